package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestIsConditionFailed(t *testing.T) {
	cancelled := func(codes ...string) error {
		var rs []types.CancellationReason
		for _, c := range codes {
			rs = append(rs, types.CancellationReason{Code: aws.String(c)})
		}
		return fmt.Errorf("commit: %w", &types.TransactionCanceledException{CancellationReasons: rs})
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("network"), false},
		{fmt.Errorf("put: %w", &types.ConditionalCheckFailedException{}), true},
		{&types.TransactionConflictException{}, true},
		{cancelled("None", "ConditionalCheckFailed"), true},
		{cancelled("TransactionConflict", "None"), true},
		{cancelled("ConditionalCheckFailed", "ValidationError"), false},
		{cancelled("ThrottlingError"), false},
	} {
		if got := IsConditionFailed(c.err); got != c.want {
			t.Errorf("IsConditionFailed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	got := FailedConditions(cancelled("None", "ConditionalCheckFailed"))
	if len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("FailedConditions = %v", got)
	}
	if FailedConditions(errors.New("x")) != nil {
		t.Fatal("FailedConditions of a plain error")
	}
}
