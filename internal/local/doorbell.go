package local

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// doorbells wake a stream's pollers when a stage of this process published to it: a record
// waits for its consumer's next read only as long as that read takes, not up to a poll interval
// per hop (the interval stays the bound for records written by anyone else).
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
			d[aws.ToString(p.StreamName)].Ring()
		case *kinesis.PutRecordInput:
			d[aws.ToString(p.StreamName)].Ring()
		}
		return out, md, err
	}), middleware.After)
}
