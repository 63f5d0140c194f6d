package main

import (
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := loadConfig(env(map[string]string{"CDP_TABLE": "cdp"}))
	if err != nil || c.allowPrivate || c.timeout != 10*time.Second {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = loadConfig(env(map[string]string{"CDP_TABLE": "cdp", "CDP_ALLOW_PRIVATE_WEBHOOKS": "true", "CDP_WEBHOOK_TIMEOUT_SECONDS": "3", "LOG_LEVEL": "debug"}))
	if err != nil || !c.allowPrivate || c.timeout != 3*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []map[string]string{{}, {"CDP_TABLE": "t", "CDP_ALLOW_PRIVATE_WEBHOOKS": "yes please"},
		{"CDP_TABLE": "t", "CDP_WEBHOOK_TIMEOUT_SECONDS": "0"}, {"CDP_TABLE": "t", "LOG_LEVEL": "loud"}} {
		if _, err := loadConfig(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
