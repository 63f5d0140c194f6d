package local

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// doorbells wake the pollers of a stream's shards when a stage of this process published to
// them: a record waits for its consumer's next read only as long as that read takes, not up to
// a poll interval per hop (the interval stays the bound for records written by anyone else),
// and shards that received nothing are not woken.
type doorbells map[string]*stream.Doorbell

func newDoorbells(streams ...string) doorbells {
	d := doorbells{}
	for _, s := range streams {
		d[s] = &stream.Doorbell{}
	}
	return d
}

// clients returns c with a Kinesis client that rings the stream's doorbell after each
// successful PutRecords or PutRecord (the same options otherwise, so metering is kept).
func (d doorbells) clients(c awsenv.Clients) awsenv.Clients {
	if c.Kinesis == nil {
		return c
	}
	c.Kinesis = kinesis.New(c.Kinesis.Options(), func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, d.ringAfterPut)
	})
	return c
}

func (d doorbells) ringAfterPut(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("cdpLocalDoorbell", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if err != nil {
			return out, md, err
		}
		switch p := in.Parameters.(type) {
		case *kinesis.PutRecordsInput:
			if res, ok := out.Result.(*kinesis.PutRecordsOutput); ok {
				if ids := shardsOf(res); len(ids) > 0 {
					d[aws.ToString(p.StreamName)].Ring(ids...)
				}
			}
		case *kinesis.PutRecordInput:
			if res, ok := out.Result.(*kinesis.PutRecordOutput); ok {
				d[aws.ToString(p.StreamName)].Ring(aws.ToString(res.ShardId))
			}
		}
		return out, md, err
	}), middleware.After)
}

// shardsOf lists the shards that took at least one record of a PutRecords call.
func shardsOf(out *kinesis.PutRecordsOutput) []string {
	seen := map[string]bool{}
	var ids []string
	for _, r := range out.Records {
		if id := aws.ToString(r.ShardId); r.ErrorCode == nil && id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}
