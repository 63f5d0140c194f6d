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
	// item limit: a hard guard, since the accumulators are bounded (their size depends on the
	// definitions, not on the profile's history). A state over it is refused (ErrTooLarge) and
	// the profile's change records go to the dead letters.
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
