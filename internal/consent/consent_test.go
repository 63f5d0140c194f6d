package consent

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFromContext(t *testing.T) {
	p, ok := FromContext(json.RawMessage(`{"consent":{"categoryPreferences":{"advertising":false,"analytics":true,"bad":"yes"}}}`))
	if !ok || len(p) != 2 || p["advertising"] || !p["analytics"] {
		t.Fatalf("got %v %v", p, ok)
	}
	for _, c := range []string{``, `{}`, `{"consent":{}}`, `[1]`, `{"consent":{"categoryPreferences":3}}`} {
		if _, ok := FromContext(json.RawMessage(c)); ok {
			t.Errorf("%q: want no preferences", c)
		}
	}
}

func TestApplyNewestWins(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var p Profile
	if !p.Apply(Preferences{"ads": true}, t0.Add(time.Hour)) {
		t.Fatal("first preference is a change")
	}
	if p.Apply(Preferences{"ads": false}, t0) {
		t.Fatal("an older event must not overwrite a newer preference")
	}
	if !p.Apply(Preferences{"ads": false}, t0.Add(2*time.Hour)) || p.Preferences()["ads"] {
		t.Fatalf("newer event wins: %v", p.Preferences())
	}
}

func TestAllows(t *testing.T) {
	cases := []struct {
		cats    []string
		require bool
		prefs   Preferences
		known   bool
		want    bool
	}{
		{nil, false, nil, false, true},
		{[]string{"ads"}, false, nil, false, true},
		{[]string{"ads"}, true, nil, false, false},
		{[]string{"ads"}, false, Preferences{"ads": false}, true, false},
		{[]string{"ads"}, false, Preferences{"ads": true}, true, true},
		{[]string{"ads", "x"}, false, Preferences{"ads": true}, true, false},
		{nil, true, Preferences{}, true, true},
	}
	for i, c := range cases {
		if got := Allows(c.cats, c.require, c.prefs, c.known); got != c.want {
			t.Errorf("case %d: got %v want %v", i, got, c.want)
		}
	}
}
