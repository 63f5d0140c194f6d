package timeline

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// An event survives Encode and Decode, small (plain JSON) and large (compressed, and then
// smaller than its JSON); the profile comes from gsi1pk.
func TestEncodeDecode(t *testing.T) {
	for _, props := range []string{`{"a":1}`, `{"pad":"` + strings.Repeat("abc ", 400) + `"}`} {
		e := Event{Profile: "use_p", Source: "web", Seq: 7, Expires: time.Unix(1_900_000_000, 0).UTC(),
			Message: tracking.Message{Type: "track", MessageID: "m1", Event: "E", Properties: json.RawMessage(props), Timestamp: time.Unix(1_800_000_000, 0).UTC()}}
		it, err := Encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(it)
		if err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(e)
		if string(gb) != string(wb) {
			t.Fatalf("round trip:\n got  %s\n want %s", gb, wb)
		}
		if _, z := it[AttrMsgZ]; z != (len(props) > compressAbove) {
			t.Fatalf("%d bytes of properties: compressed %v", len(props), z)
		}
		if _, has := it[AttrProfile]; has || store.ItemSize(it) > 1024 {
			t.Fatalf("item of %d bytes with attributes %v", store.ItemSize(it), it)
		}
	}
}
