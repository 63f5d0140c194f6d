package importer

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

func readRows(t testing.TB, content string, f Format) []Row {
	t.Helper()
	rows, err := NewRows(strings.NewReader(content), f)
	if err != nil {
		t.Fatal(err)
	}
	var out []Row
	for {
		r, err := rows.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

func ids(t *testing.T, m Mapping, content string) []string {
	t.Helper()
	c := NewConverter(m)
	var out []string
	for _, r := range readRows(t, content, CSV) {
		b, rerr := c.Convert(r)
		if rerr != nil {
			t.Fatalf("row %d: %v", r.Line, rerr)
		}
		var msg struct{ MessageID string }
		_ = json.Unmarshal(b, &msg)
		out = append(out, msg.MessageID)
	}
	return out
}

// Ids are stable across runs, differ for identical rows (the second is another event), change
// with the mapping, and with an id column depend only on that column (and the call).
func TestMessageIDs(t *testing.T) {
	m := Mapping{Type: CallTrack, EventName: "Bought", UserID: "u", Properties: map[string]string{"p": TypeNumber}}
	const file = "u,p\nann,1\nann,1\nbob,2\n"
	a, b := ids(t, m, file), ids(t, m, file)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Errorf("ids differ between runs: %v %v", a, b)
	}
	if a[0] == a[1] || a[0] == a[2] || a[1] == a[2] {
		t.Errorf("ids not distinct: %v", a)
	}
	m2 := m
	m2.EventName = "Sold"
	if c := ids(t, m2, file); c[0] == a[0] {
		t.Error("another mapping makes the same id")
	}
	withID := Mapping{Type: CallTrack, EventName: "Bought", UserID: "u", MessageID: "order"}
	x := ids(t, withID, "u,order,note\nann,o1,first\n")
	y := ids(t, withID, "u,order,note\nann,o1,edited\nann,o2,x\n")
	if x[0] != y[0] || y[0] == y[1] {
		t.Errorf("id-column ids: %v %v", x, y)
	}
	identify := Mapping{Type: CallIdentify, UserID: "u", MessageID: "order"}
	if z := ids(t, identify, "u,order\nann,o1\n"); z[0] == x[0] {
		t.Error("an identify and a track with the same id column value collide")
	}
}

func TestConvertTypesAndErrors(t *testing.T) {
	m := Mapping{Type: CallIdentify, UserID: "id", AnonymousID: "anon", Timestamp: "ts",
		Traits: map[string]string{"n": TypeNumber, "b": TypeBool, "d": TypeTime, "s": TypeString}}
	content := "id,anon,ts,n,b,d,s\n" +
		"u1,,2024-05-01 10:00:00,1e3,TRUE,2024-05-01,x\n" + // 2: ok
		",,,,,,\n" + // 3: no id
		"u3,,yesterday,,,,\n" + // 4: bad timestamp
		"u4,,,NaN,,,\n" + // 5: NaN is not a number
		"u5,,,,maybe,,\n" + // 6
		"u6,,,,,10000-01-01,\n" + // 7: not ISO
		strings.Repeat("x", 513) + ",,,,,,\n" + // 8: id too long
		"u8,,,\n" + // 9: field count
		"u9,,,,,,\"quoted\"\n" // 10: ok
	c := NewConverter(m)
	var got []string
	var first map[string]any
	for _, r := range readRows(t, content, CSV) {
		b, rerr := c.Convert(r)
		if rerr != nil {
			got = append(got, rerr.Error())
			continue
		}
		if first == nil {
			_ = json.Unmarshal(b, &first)
		}
	}
	want := []string{
		`line 3: no userId or anonymousId: id, anon empty`,
		`line 4: column "ts": not a time (ISO 8601, e.g. 2024-05-01T10:00:00Z or 2024-05-01)`,
		`line 5: column "n": not a number`,
		`line 6: column "b": not a bool (true/false, 1/0)`,
		`line 7: column "d": not a time (ISO 8601, e.g. 2024-05-01T10:00:00Z or 2024-05-01)`,
		`line 8: column "id": 513 bytes; the limit is 512`,
		`line 9: has 4 fields; the header has 7`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	tr, _ := first["traits"].(map[string]any)
	if first["timestamp"] != "2024-05-01T10:00:00Z" || tr["n"] != float64(1000) || tr["b"] != true ||
		tr["d"] != "2024-05-01T00:00:00Z" || tr["s"] != "x" {
		t.Errorf("first message %v", first)
	}
}

// Track rows carry the email in context.traits, where identity reads identifiers.
func TestTrackEmailGoesToContextTraits(t *testing.T) {
	m := Mapping{Type: CallTrack, Event: "ev", UserID: "u", Email: "e"}
	rows := readRows(t, "u,e,ev\nu1,a@x.io,Bought\nu2,b@x.io,\n", CSV)
	c := NewConverter(m)
	b, rerr := c.Convert(rows[0])
	if rerr != nil || !strings.Contains(string(b), `"context":{"traits":{"email":"a@x.io"}}`) || !strings.Contains(string(b), `"event":"Bought"`) {
		t.Errorf("%s %v", b, rerr)
	}
	if _, rerr := c.Convert(rows[1]); rerr == nil || rerr.Column != "ev" {
		t.Errorf("an empty event name: %v", rerr)
	}
}

func TestMappingFromFlagsAndFiles(t *testing.T) {
	m, err := ParseMap([]string{"type=identify", "userId=id", "email=mail", "traits=name,age:number, vip:bool"})
	if err != nil {
		t.Fatal(err)
	}
	if m.UserID != "id" || m.Email != "mail" || m.Traits["age"] != TypeNumber || m.Traits["vip"] != TypeBool || m.Traits["name"] != TypeString {
		t.Errorf("%+v", m)
	}
	dir := t.TempDir()
	y := filepath.Join(dir, "m.yaml")
	_ = os.WriteFile(y, []byte("type: track\nuserId: id\neventName: Order Completed\nproperties:\n  total: number\n"), 0o600)
	j := filepath.Join(dir, "m.json")
	_ = os.WriteFile(j, []byte(`{"type":"track","userId":"id","eventName":"Order Completed","properties":{"total":"number"}}`), 0o600)
	a, errA := LoadMapping(y)
	b, errB := LoadMapping(j)
	if errA != nil || errB != nil || a.Fingerprint() != b.Fingerprint() {
		t.Errorf("yaml %+v %v; json %+v %v", a, errA, b, errB)
	}
	for _, bad := range [][]string{
		{"type=track", "userId=id"},                            // no event
		{"type=identify"},                                      // no id column
		{"type=merge", "userId=id"},                            // type
		{"type=identify", "userId=id", "traits=a:date"},        // value type
		{"type=identify", "userId=id", "properties=a"},         // identify has traits
		{"type=track", "userId=id", "eventName=E", "traits=a"}, // track has properties
		{"type=identify", "userId=id", "colour=red"},           // key
		{"type=track", "userId=id", "eventName=E", "event=ev"}, // both
		{"type=identify", "userId"},                            // not KEY=VALUE
	} {
		if _, err := ParseMap(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	_ = os.WriteFile(y, []byte("type: identify\nuserId: id\nunknown: 1\n"), 0o600)
	if _, err := LoadMapping(y); err == nil {
		t.Error("a mapping file with an unknown key was accepted")
	}
}

// Batches respect both limits, and every body is one the tracking API accepts.
func TestBatchesRespectLimits(t *testing.T) {
	var b batch
	var bodies [][]byte
	big := strings.Repeat("x", 20<<10)
	add := func(js string) {
		it := item{json: []byte(js)}
		if !b.fits(it, MaxBatchEvents) {
			bodies = append(bodies, body(b.items))
			b = batch{}
		}
		b.add(it)
	}
	for i := 0; i < 6000; i++ {
		add(`{"type":"track","event":"e","userId":"u"}`)
	}
	for i := 0; i < 60; i++ {
		add(`{"type":"track","event":"e","userId":"u","properties":{"p":"` + big + `"}}`)
	}
	bodies = append(bodies, body(b.items))
	counts := []int{}
	for _, bd := range bodies {
		if len(bd) > MaxBatchBytes {
			t.Errorf("body of %d bytes", len(bd))
		}
		req, err := tracking.ParseRequest(bd, tracking.KindBatch, tracking.DefaultLimits)
		if err != nil {
			t.Fatalf("the API refuses a batch: %v", err)
		}
		if _, err := req.Normalize(time.Now(), "src"); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(req.Items))
	}
	if counts[0] != 2500 || counts[1] != 2500 || len(counts) < 5 {
		t.Errorf("batch sizes %v", counts)
	}
}

// FuzzCSVRowMapping: any CSV line either becomes a message the tracking API accepts as it is, or
// is reported with a reason that contains none of the row's values.
func FuzzCSVRowMapping(f *testing.F) {
	for _, s := range []string{"u1,a@b.c,Ann,42,true,2024-01-01", ",,,,,", "u\xff,,,,,", `"u,1",x,"y""z",1e309,2,1999-13-01`,
		"u1,,,NaN,yes,2024-01-01T25:00:00Z", "\ufffd,,,,,", "u1,e,n,0x10,1,0001-01-01"} {
		f.Add(s)
	}
	m := Mapping{Type: CallIdentify, UserID: "id", Email: "email", Timestamp: "at",
		Traits: map[string]string{"name": TypeString, "age": TypeNumber, "vip": TypeBool}}
	const header = "id,email,name,age,vip,at\n"
	f.Fuzz(func(t *testing.T, line string) {
		c := NewConverter(m)
		for _, r := range readRows(t, header+line, CSV) {
			msg, rerr := c.Convert(r)
			if rerr != nil {
				checkReasonHidesValues(t, r, rerr)
				continue
			}
			req, err := tracking.ParseRequest(body([]item{{json: msg}}), tracking.KindBatch, tracking.DefaultLimits)
			if err == nil {
				_, err = req.Normalize(time.Now(), "src")
			}
			if err != nil {
				t.Fatalf("line %q became %s, which the tracking API refuses: %v", line, msg, err)
			}
		}
	})
}

func checkReasonHidesValues(t *testing.T, r Row, rerr *RowError) {
	t.Helper()
	for _, v := range r.Values {
		s, _ := v.(string)
		s = strings.TrimSpace(s)
		if len(s) >= 6 && strings.Contains(rerr.Error(), s) && !strings.Contains(staticReasons, s) {
			t.Fatalf("reason %q contains the value %q", rerr.Error(), s)
		}
	}
}

// staticReasons is the text of every reason, which a value may happen to match.
const staticReasons = `id,email,name,age,vip,at no userId or anonymousId: empty not a time (ISO 8601, e.g.
2024-05-01T10:00:00Z or 2024-05-01) not a number not a bool (true/false, 1/0) bytes; the limit is not valid UTF-8
has fields; the header has not valid CSV: a time outside the years 0001–9999 column line`
