package main

import (
	"log/slog"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := loadConfig(env(nil)); err == nil {
		t.Fatal("missing CDP_TABLE accepted")
	}
	if _, err := loadConfig(env(map[string]string{"CDP_TABLE": "t", "LOG_LEVEL": "loud"})); err == nil {
		t.Fatal("bad LOG_LEVEL accepted")
	}
	c, err := loadConfig(env(map[string]string{"CDP_TABLE": "t", "LOG_LEVEL": "debug"}))
	if err != nil || c.table != "t" || c.level != slog.LevelDebug {
		t.Fatalf("%+v, %v", c, err)
	}
	c, err = loadConfig(env(map[string]string{"CDP_TABLE": "t"}))
	if err != nil || c.level != slog.LevelInfo {
		t.Fatalf("default level: %+v, %v", c, err)
	}
}
