package segment

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/serverless-cdp/cdp/internal/stream"
)

// Limits that keep one profile's state and output within what the stores accept.
const (
	// MaxProfileIDBytes bounds a profile id (it is part of every key of the profile).
	MaxProfileIDBytes = 512
	// MaxStateBytes bounds a profile's stored state (compressed), within DynamoDB's 400 KB
	// item limit. Past it the oldest events of the log are dropped (see State.fit); a state
	// that does not fit even without events is refused (ErrTooLarge).
	MaxStateBytes = 300 << 10
)

// ErrTooLarge is returned when a profile's state or output cannot fit the stores' limits; the
// change records of that profile are dead-lettered.
var ErrTooLarge = errors.New("over the size limit")

// isPermanent reports errors that will come back for the same input, so retrying cannot help.
func isPermanent(err error) bool {
	var ae smithy.APIError
	return errors.Is(err, ErrTooLarge) || (errors.As(err, &ae) && ae.ErrorCode() == "ValidationException")
}

// checkRecordSize refuses an activation record the stream would refuse.
func checkRecordSize(data []byte, partitionKey string) error {
	if n := len(data) + len(partitionKey); n > stream.MaxRecordBytes {
		return fmt.Errorf("activation record of %d bytes: %w (Kinesis allows %d)", n, ErrTooLarge, stream.MaxRecordBytes)
	}
	return nil
}

// fit keeps the encoded state within budget bytes by dropping the oldest events of the log
// (all-time aggregates then count what is retained, as with MaxEvents). It does nothing when
// a cheap upper bound of the size is within budget.
func (s *State) fit(budget int) error {
	if s.sizeBound() <= budget {
		return nil
	}
	for {
		b, err := encodeState(s)
		if err != nil {
			return err
		}
		if len(b) <= budget || len(s.Events) == 0 {
			return nil
		}
		over := len(b) - budget
		drop := max(1, len(s.Events)*over/len(b)+len(s.Events)/20)
		s.Events = append([]Event(nil), s.Events[min(drop, len(s.Events)):]...)
	}
}

// sizeBound is an upper bound of the encoded state's size: its JSON size estimated generously
// (gzip adds at most a small fraction to incompressible data).
func (s *State) sizeBound() int {
	n := 4096 + len(s.ProfileID) + len(s.UserID) + len(s.AnonymousID) + len(s.Email) + len(s.MergedInto)
	for k, v := range s.Traits {
		n += len(k) + len(v) + 8
	}
	for k, v := range s.Computed {
		n += len(k) + len(v) + 8
	}
	n += len(s.Members) * 160
	for _, e := range s.Events {
		n += 6*(len(e.ID)+len(e.Name)) + len(e.P) + 64 // names may be escaped (\u003c)
	}
	return n + n/50
}
