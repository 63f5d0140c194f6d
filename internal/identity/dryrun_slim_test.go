package identity

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestIdentityOnlyKeepsTheIdentifiers: the slim record a dry run processes yields exactly the
// identifiers (and alias previousId) of the full record, and is much smaller.
func TestIdentityOnlyKeepsTheIdentifiers(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	big := `"` + noise(2000) + `"`
	ctx := `{"traits":{"email":"Ann@X.test","phone":"+1 555","plan":` + big + `},"device":{"id":"dev-1","advertisingId":"ad-1","model":"x"},` +
		`"externalIds":[{"id":"crm-9","type":"crm_id","collection":"users","encoding":"none"}],"page":{"url":` + big + `},"consent":{"categoryPreferences":{"ads":true}}}`
	for _, m := range []tracking.Message{
		{Type: tracking.TypeIdentify, UserID: "u1", Traits: json.RawMessage(`{"email":"a@b.test","phone":"1","name":` + big + `}`), Context: json.RawMessage(ctx)},
		{Type: tracking.TypeTrack, AnonymousID: "an1", Event: "Viewed", Properties: json.RawMessage(`{"p":` + big + `}`), Traits: json.RawMessage(`{"email":"ignored@t.test"}`), Context: json.RawMessage(ctx)},
		{Type: tracking.TypeAlias, UserID: "u2", PreviousID: "an2"},
		{Type: tracking.TypeGroup, UserID: "u3", GroupID: "g1", Traits: json.RawMessage(`{"email":"group@t.test"}`)},
		{Type: tracking.TypePage, AnonymousID: "an3", Context: json.RawMessage(`{"traits":"not an object","device":[1]}`)},
	} {
		m.MessageID, m.Timestamp, m.ReceivedAt = "m1", at, at
		rec := tracking.Record{SourceID: "s", Message: m}
		slim := identityOnly(rec)
		if got, want := Extract(&slim.Message), Extract(&m); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: identifiers %+v, want %+v", m.Type, got, want)
		}
		if slim.SourceID != "s" || slim.Message.MessageID != "m1" || !slim.Message.ReceivedAt.Equal(at) || slim.Message.Type != m.Type {
			t.Errorf("%s: %+v", m.Type, slim)
		}
		full, _ := json.Marshal(rec)
		small, _ := json.Marshal(slim)
		if len(full) > 2000 && len(small) > len(full)/4 {
			t.Errorf("%s: slim record is %d bytes of %d", m.Type, len(small), len(full))
		}
	}
}
