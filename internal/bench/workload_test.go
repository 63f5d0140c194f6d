package bench

import "testing"

func TestGenerateDeterministic(t *testing.T) {
	a, b, c := Generate(42, 200), Generate(42, 200), Generate(43, 200)
	// Pinned: a change to the generator changes every benchmark figure it is compared with.
	if got := a.Fingerprint(); got != "6fb28289aa0c52e0" {
		t.Fatalf("Generate(42, 200) fingerprint %s, want 6fb28289aa0c52e0", got)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("same seed, different workloads")
	}
	if a.Fingerprint() == c.Fingerprint() {
		t.Fatal("different seeds, same workload")
	}
	if n := len(a.Sends); n < 3000 || n > 8000 {
		t.Fatalf("%d messages for 200 persons", n)
	}
	if d := len(a.Sends) - a.Distinct(); d == 0 {
		t.Fatal("no duplicates")
	}
	if len(a.Triggers()) == 0 {
		t.Fatal("no audience entries expected")
	}
	t.Logf("%d persons/profiles, %d messages, %d distinct, %d audience entries", len(a.Persons), len(a.Sends), a.Distinct(), len(a.Triggers()))
}
