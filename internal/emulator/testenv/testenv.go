// Package testenv gives integration tests real DynamoDB Local and kinesis-mock instances, and an
// S3-compatible server (emulator.S3Server: gofakes3 over HTTP).
//
// `make test` starts the emulators once and exports AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_KINESIS; a package run on its own (`go test ./internal/x`) starts a private
// pair on free ports from its TestMain and stops them afterwards. The S3 server runs inside each
// test process on a free port (AWS_ENDPOINT_URL_S3), unless AWS_ENDPOINT_URL_S3 is already set.
// Each test gets its own table, streams and bucket, so packages and tests never see each other's
// data.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// Main is a TestMain body: it makes sure emulators are reachable, runs the tests, and stops the
// emulators it started itself.
func Main(m *testing.M) {
	os.Exit(run(m))
}

// runS3 starts the S3 server unless AWS_ENDPOINT_URL_S3 is set, sets dummy credentials and a
// region, and runs the tests.
func runS3(m *testing.M) int {
	if os.Getenv("AWS_ENDPOINT_URL_S3") == "" {
		srv, err := emulator.StartS3(0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer srv.Stop()
		os.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	}
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return m.Run()
}

func run(m *testing.M) int {
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" || os.Getenv("AWS_ENDPOINT_URL_KINESIS") == "" {
		cfg, err := emulator.DefaultConfig(".")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		if cfg.DynamoDBPort, err = emulator.FreePort(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		if cfg.KinesisPort, err = emulator.FreeKinesisPort(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		cfg.LogDir = ""
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		stack, err := emulator.Start(ctx, cfg)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer stack.Stop()
		os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.DynamoDBEndpoint)
		os.Setenv("AWS_ENDPOINT_URL_KINESIS", stack.KinesisEndpoint)
	}
	return runS3(m)
}

// Clients returns SDK clients pointed at the emulators.
func Clients(t testing.TB) awsenv.Clients {
	t.Helper()
	c, err := awsenv.Load(context.Background())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return c
}

// S3 returns an S3 client pointed at the S3 server (path-style, as for any emulator).
func S3(t testing.TB) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Like archive.NewS3Client(cfg, true), which this package cannot import (the archive's
	// tests import testenv).
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
}

// Bucket creates a fresh bucket and empties and deletes it when the test ends.
func Bucket(t testing.TB, c *s3.Client) string {
	t.Helper()
	name := Name("cdp-archive")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}

// Name returns a unique resource name with the given prefix.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Table creates a fresh table and deletes it when the test ends.
func Table(t testing.TB, db *dynamodb.Client) string {
	t.Helper()
	name := Name("cdp")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := store.CreateTable(ctx, db, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Stream creates a fresh stream with the given number of shards and deletes it when the test ends.
func Stream(t testing.TB, k *kinesis.Client, prefix string, shards int32) string {
	t.Helper()
	name := Name(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stream.CreateStream(ctx, k, name, shards); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		_, _ = k.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	return name
}

// ReadStream reads every record from every shard of a stream from the beginning, polling until at
// least want records have arrived or timeout passes. It returns what it read either way.
func ReadStream(t testing.TB, k *kinesis.Client, name string, want int, timeout time.Duration) []kinesistypes.Record {
	t.Helper()
	ctx := context.Background()
	desc, err := k.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("testenv: describe %s: %v", name, err)
	}
	iters := map[string]*string{}
	for _, sh := range desc.StreamDescription.Shards {
		out, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: sh.ShardId, ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("testenv: iterator: %v", err)
		}
		iters[aws.ToString(sh.ShardId)] = out.ShardIterator
	}
	var recs []kinesistypes.Record
	deadline := time.Now().Add(timeout)
	for {
		for id, it := range iters {
			out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
			if err != nil {
				t.Fatalf("testenv: get records: %v", err)
			}
			recs = append(recs, out.Records...)
			iters[id] = out.NextShardIterator
		}
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(50 * time.Millisecond)
	}
}
