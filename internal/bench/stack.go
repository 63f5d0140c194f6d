package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/local"
)

// Stages whose usage is reported separately: the local runner's stages, plus setup (table and
// stream creation, seeding), which is left out of the per-event figures.
const (
	StageIngest     = local.StageIngest
	StageIdentity   = local.StageIdentity
	StageSegments   = local.StageSegments
	StageActivation = local.StageActivation
	StageSchedules  = local.StageSchedules
	StageAPI        = local.StageAPI
	stageSetup      = "setup"
)

// PipelineStages are the stages an event goes through (the API's reads are the benchmark's own
// checks, not part of the pipeline's cost).
var PipelineStages = []string{StageIngest, StageIdentity, StageSegments, StageActivation, StageSchedules}

// stack is the local runner with every stage on its own metered clients.
type stack struct {
	*local.Stack

	mu       sync.Mutex
	lastWork map[string]time.Time
}

func awsConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func meteredClients(cfg aws.Config, m *Meter, stage string) awsenv.Clients {
	return awsenv.Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, append(awsenv.DynamoDBOptions(), m.DynamoDB(stage))...),
		Kinesis:  kinesis.NewFromConfig(cfg, m.Kinesis(stage)),
		AWS:      cfg,
	}
}

func startStack(ctx context.Context, awsCfg aws.Config, cfg app.Config, m *Meter, writeKey, adminToken string, logger *slog.Logger) (*stack, error) {
	s := &stack{lastWork: map[string]time.Time{}}
	ls, err := local.Start(ctx, meteredClients(awsCfg, m, stageSetup), local.Options{
		Config: cfg, Addr: "127.0.0.1:0", Shards: 2, DevWriteKey: writeKey, DevAdminToken: adminToken,
		PollInterval: 100 * time.Millisecond, TickInterval: 10 * time.Second, Logger: logger,
		StageClients: func(stage string) awsenv.Clients { return meteredClients(awsCfg, m, stage) },
		Observe: func(inv local.Invocation) {
			m.with(inv.Stage, func(u *StageUsage) {
				u.Invocations++
				u.Records += inv.Records
				u.BusyMs += ms(inv.Took)
			})
			if inv.Records > 0 {
				s.mu.Lock()
				s.lastWork[inv.Stage] = inv.Start.Add(inv.Took)
				s.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	s.Stack = ls
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// idleFor reports whether no stream stage has handled a record for d.
func (s *stack) idleFor(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.lastWork {
		if time.Since(t) < d {
			return false
		}
	}
	return true
}

func deleteResources(awsCfg aws.Config, cfg app.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, k := dynamodb.NewFromConfig(awsCfg), kinesis.NewFromConfig(awsCfg)
	if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(cfg.Table)}); err != nil {
		fmt.Fprintln(os.Stderr, "bench: delete table:", err)
	}
	for _, s := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		_, _ = k.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(s), EnforceConsumerDeletion: aws.Bool(true)})
	}
}
