// Package chaos is the fault suite (its tests only): the whole pipeline under faults — the local
// runner SIGKILLed mid-burst and restarted, kinesis-mock killed and restarted under a running
// runner, partial PutRecords failures — each checking through the public endpoints that every
// event answered 200 is stored exactly once. The tests start a private pair of emulators, since
// they kill and restart them. `make test` runs it with everything else; `make chaos` alone.
package chaos
