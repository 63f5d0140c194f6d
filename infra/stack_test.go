package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

type obj = map[string]interface{}

func ref(id string) obj    { return obj{"Ref": id} }
func arnOf(id string) obj  { return obj{"Fn::GetAtt": []interface{}{id, "Arn"}} }
func typ(s string) *string { return jsii.String(s) }

func specSeconds(s FunctionSpec) float64 {
	if s.Timeout == 0 {
		return 30
	}
	return s.Timeout.Seconds()
}

func specMemory(s FunctionSpec) int {
	if s.MemoryMB == 0 {
		return 256
	}
	return s.MemoryMB
}

func TestFunctions(t *testing.T) {
	for _, f := range fixtures(t) {
		check(t, f.name+": function count", func() {
			f.tpl.ResourceCountIs(typ("AWS::Lambda::Function"), jsii.Number(float64(len(f.stack.Specs))))
		})
		check(t, f.name+": every function is provided.al2023 on arm64 with handler bootstrap", func() {
			f.tpl.AllResourcesProperties(typ("AWS::Lambda::Function"), obj{
				"Runtime":       "provided.al2023",
				"Architectures": []string{"arm64"},
				"Handler":       "bootstrap",
			})
		})
		check(t, f.name+": every log group (functions, access logs) has the configured retention", func() {
			f.tpl.ResourceCountIs(typ("AWS::Logs::LogGroup"), jsii.Number(float64(len(f.stack.Specs)+1)))
			f.tpl.AllResourcesProperties(typ("AWS::Logs::LogGroup"), obj{
				"RetentionInDays": f.stack.Config.LogRetentionDays,
			})
		})
		for _, spec := range f.stack.Specs {
			check(t, f.name+": function "+spec.Name, func() {
				f.tpl.HasResourceProperties(typ("AWS::Lambda::Function"), obj{
					"Description":   spec.Description,
					"Runtime":       "provided.al2023",
					"Architectures": []string{"arm64"},
					"Handler":       "bootstrap",
					"MemorySize":    specMemory(spec),
					"Timeout":       specSeconds(spec),
					"Role":          arnOf(f.id(f.stack.Roles[spec.Name])),
					"LoggingConfig": obj{"LogGroup": ref(f.id(f.stack.LogGroups[spec.Name]))},
				})
			})
			// The code must be the directory <asset root>/<name>: read back the staged asset.
			fn := f.json["Resources"].(obj)[f.id(f.stack.Functions[spec.Name])].(obj)
			asset, _ := fn["Metadata"].(obj)["aws:asset:path"].(string)
			body, err := os.ReadFile(filepath.Join(f.outdir, asset, "bootstrap"))
			if err != nil || !strings.Contains(string(body), "fake "+spec.Name+"\n") {
				t.Errorf("%s: function %s code is not %s/bootstrap (asset %q: %v)", f.name, spec.Name, spec.Name, asset, err)
			}
		}
	}
}

func TestEnvironment(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		want := obj{
			"CDP_TABLE":              ref(f.id(s.Table)),
			"CDP_EVENTS_STREAM":      ref(f.id(s.Streams[StreamEvents])),
			"CDP_CHANGES_STREAM":     ref(f.id(s.Streams[StreamChanges])),
			"CDP_ACTIVATIONS_STREAM": ref(f.id(s.Streams[StreamActivations])),
			"CDP_ALLOWED_ORIGINS":    strings.Join(s.Config.AllowedOrigins, ","),
			"LOG_LEVEL":              s.Config.LogLevel,
		}
		check(t, f.name+": every function gets exactly the CDP environment", func() {
			f.tpl.AllResourcesProperties(typ("AWS::Lambda::Function"), obj{
				"Environment": obj{"Variables": assertions.Match_ObjectEquals(&want)},
			})
		})
	}
	if o := fixFuture.stack.Config.AllowedOrigins; len(o) != 2 {
		t.Fatalf("future fixture should exercise a list of origins, has %v", o)
	}
}

func TestEventSourceMappings(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		triggers := 0
		for _, spec := range s.Specs {
			if spec.Trigger == "" {
				continue
			}
			triggers++
			check(t, f.name+": event source mapping of "+spec.Name, func() {
				f.tpl.HasResourceProperties(typ("AWS::Lambda::EventSourceMapping"), obj{
					"FunctionName":                   ref(f.id(s.Functions[spec.Name])),
					"EventSourceArn":                 arnOf(f.id(s.Streams[spec.Trigger])),
					"StartingPosition":               "TRIM_HORIZON",
					"BatchSize":                      s.Config.BatchSize,
					"MaximumBatchingWindowInSeconds": s.Config.MaxBatchingWindow,
					"ParallelizationFactor":          s.Config.Parallelization,
					"BisectBatchOnFunctionError":     true,
					"MaximumRetryAttempts":           RetryAttempts,
					"MaximumRecordAgeInSeconds":      MaxRecordAge(s.Config.StreamRetention).Seconds(),
					"FunctionResponseTypes":          []string{"ReportBatchItemFailures"},
					"DestinationConfig": obj{"OnFailure": obj{
						"Destination": arnOf(f.id(s.FailureQueues[spec.Name])),
					}},
				})
			})
		}
		check(t, f.name+": one mapping per trigger", func() {
			f.tpl.ResourceCountIs(typ("AWS::Lambda::EventSourceMapping"), jsii.Number(float64(triggers)))
		})
		check(t, f.name+": failure queues are encrypted, TLS-only, retained and keep 14 days", func() {
			f.tpl.ResourceCountIs(typ("AWS::SQS::Queue"), jsii.Number(float64(triggers)))
			f.tpl.AllResources(typ("AWS::SQS::Queue"), obj{"DeletionPolicy": "Retain"})
			f.tpl.AllResourcesProperties(typ("AWS::SQS::Queue"), obj{
				"SqsManagedSseEnabled":   true,
				"MessageRetentionPeriod": 14 * 24 * 3600,
			})
			f.tpl.ResourcePropertiesCountIs(typ("AWS::SQS::QueuePolicy"), obj{
				"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]interface{}{
					assertions.Match_ObjectLike(&obj{
						"Effect":    "Deny",
						"Condition": obj{"Bool": obj{"aws:SecureTransport": "false"}},
					}),
				})},
			}, jsii.Number(float64(triggers)))
		})
		// Invariants every mapping must keep, whatever a future spec says: bounded retries and
		// age (-1 means forever: one poison record would block its shard), and a record
		// must still be in the stream when it is replayed from the failure queue.
		for id, m := range f.resources("AWS::Lambda::EventSourceMapping") {
			p := m["Properties"].(obj)
			retries, _ := p["MaximumRetryAttempts"].(float64)
			age, _ := p["MaximumRecordAgeInSeconds"].(float64)
			if p["MaximumRetryAttempts"] == nil || retries < 0 || retries > 10 {
				t.Errorf("%s mapping %s: retries %v are not bounded to 0-10", f.name, id, p["MaximumRetryAttempts"])
			}
			if p["MaximumRecordAgeInSeconds"] == nil || age < 60 || age >= float64(s.Config.StreamRetention*3600) {
				t.Errorf("%s mapping %s: record age %v must be bounded and below the stream retention", f.name, id, p["MaximumRecordAgeInSeconds"])
			}
			if p["DestinationConfig"] == nil || p["BisectBatchOnFunctionError"] != true {
				t.Errorf("%s mapping %s: needs an on-failure destination and bisection", f.name, id)
			}
		}
	}
}

func TestStreams(t *testing.T) {
	for _, f := range fixtures(t) {
		cfg := f.stack.Config
		mode := obj{"StreamModeDetails": obj{"StreamMode": "PROVISIONED"}, "ShardCount": cfg.ShardCount}
		if cfg.StreamMode == StreamModeOnDemand {
			mode = obj{"StreamModeDetails": obj{"StreamMode": "ON_DEMAND"}, "ShardCount": assertions.Match_Absent()}
		}
		check(t, f.name+": three streams, KMS-encrypted, retained, retention and mode from config", func() {
			f.tpl.ResourceCountIs(typ("AWS::Kinesis::Stream"), jsii.Number(3))
			f.tpl.AllResources(typ("AWS::Kinesis::Stream"), obj{"DeletionPolicy": "Retain"})
			f.tpl.AllResourcesProperties(typ("AWS::Kinesis::Stream"), obj{
				"StreamEncryption":     obj{"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
				"RetentionPeriodHours": cfg.StreamRetention,
			})
			f.tpl.AllResourcesProperties(typ("AWS::Kinesis::Stream"), mode)
		})
	}
	if fixReal.stack.Config.StreamMode != StreamModeProvisioned || fixFuture.stack.Config.StreamMode != StreamModeOnDemand {
		t.Fatal("the fixtures should exercise both stream modes")
	}
}

// StandardAlarms is the default stack's alarm count (errors and throttles per function,
// iterator age and parked batches per trigger, API 5xx). internal/bench/prices.go prices the
// same number (CloudWatchAlarms): change both together.
const StandardAlarms = 17

// TestDefaultFixedCost pins what the default stack bills before any traffic, the figure
// internal/bench/prices.go (FixedCostItems) prices: provisioned streams with one shard and
// the retention included in the shard-hour price (no extended retention), StandardAlarms
// standard-resolution alarms, no dashboard, no customer-managed KMS key, no provisioned
// DynamoDB capacity, no NAT or other hourly resource.
func TestDefaultFixedCost(t *testing.T) {
	f := fixtures(t)[0]
	cfg := f.stack.Config
	if cfg.StreamMode != StreamModeProvisioned || cfg.ShardCount != 1 || cfg.StreamRetention != 24 {
		t.Fatalf("default streams: %s, %d shards, %d h retention; want provisioned, 1 shard, 24 h", cfg.StreamMode, cfg.ShardCount, cfg.StreamRetention)
	}
	check(t, "default: three one-shard provisioned streams, 24 h retention", func() {
		f.tpl.ResourceCountIs(typ("AWS::Kinesis::Stream"), jsii.Number(3))
		f.tpl.AllResourcesProperties(typ("AWS::Kinesis::Stream"), obj{
			"StreamModeDetails": obj{"StreamMode": "PROVISIONED"}, "ShardCount": 1, "RetentionPeriodHours": 24,
		})
	})
	check(t, "default: alarms priced by the benchmark", func() {
		f.tpl.ResourceCountIs(typ("AWS::CloudWatch::Alarm"), jsii.Number(StandardAlarms))
	})
	for _, billed := range []string{"AWS::CloudWatch::Dashboard", "AWS::KMS::Key", "AWS::EC2::NatGateway", "AWS::Kinesis::StreamConsumer"} {
		check(t, "default: no "+billed, func() {
			f.tpl.ResourceCountIs(typ(billed), jsii.Number(0))
		})
	}
	check(t, "default: the table is on-demand", func() {
		f.tpl.AllResourcesProperties(typ("AWS::DynamoDB::Table"), obj{"BillingMode": "PAY_PER_REQUEST"})
	})
}

func TestTable(t *testing.T) {
	for _, f := range fixtures(t) {
		check(t, f.name+": table", func() {
			f.tpl.ResourceCountIs(typ("AWS::DynamoDB::Table"), jsii.Number(1))
			f.tpl.HasResource(typ("AWS::DynamoDB::Table"), obj{
				"DeletionPolicy":      "Retain",
				"UpdateReplacePolicy": "Retain",
				"Properties": obj{
					"KeySchema": []obj{
						{"AttributeName": "pk", "KeyType": "HASH"},
						{"AttributeName": "sk", "KeyType": "RANGE"},
					},
					"AttributeDefinitions": assertions.Match_ArrayWith(&[]interface{}{
						obj{"AttributeName": "pk", "AttributeType": "S"},
						obj{"AttributeName": "sk", "AttributeType": "S"},
						obj{"AttributeName": "gsi1pk", "AttributeType": "S"},
						obj{"AttributeName": "gsi1sk", "AttributeType": "S"},
					}),
					"BillingMode":                      "PAY_PER_REQUEST",
					"PointInTimeRecoverySpecification": obj{"PointInTimeRecoveryEnabled": true},
					"TimeToLiveSpecification":          obj{"AttributeName": "ttl", "Enabled": true},
					"SSESpecification":                 obj{"SSEEnabled": true},
					"DeletionProtectionEnabled":        f.stack.Config.DeletionProtection,
					"GlobalSecondaryIndexes": []obj{{
						"IndexName": "gsi1",
						"KeySchema": []obj{
							{"AttributeName": "gsi1pk", "KeyType": "HASH"},
							{"AttributeName": "gsi1sk", "KeyType": "RANGE"},
						},
						"Projection": obj{"ProjectionType": "ALL"},
					}},
				},
			})
		})
	}
}

// names maps the template's logical ids to the canonical names iamcheck_test.go uses.
func (f *fixture) names() (map[string]string, map[string]FunctionSpec) {
	s := f.stack
	names := map[string]string{f.id(s.Table): "table"}
	for n, st := range s.Streams {
		names[f.id(st)] = "stream:" + n
	}
	for n, q := range s.FailureQueues {
		names[f.id(q)] = "queue:" + n
	}
	roles := map[string]FunctionSpec{}
	for _, spec := range s.Specs {
		names[f.id(s.LogGroups[spec.Name])] = "logs:" + spec.Name
		roles[f.id(s.Roles[spec.Name])] = spec
	}
	return names, roles
}

func TestIAMLeastPrivilege(t *testing.T) {
	for _, f := range fixtures(t) {
		names, roles := f.names()
		problems, granted := reviewIAM(f.json, names, roles)
		for _, p := range problems {
			t.Errorf("%s: %s", f.name, p)
		}
		for id, spec := range roles {
			for _, m := range missingGrants(spec, granted[id]) {
				t.Errorf("%s: %s", f.name, m)
			}
		}
		check(t, f.name+": function roles trust only Lambda", func() {
			f.tpl.AllResourcesProperties(typ("AWS::IAM::Role"), obj{
				"AssumeRolePolicyDocument": obj{"Statement": []obj{{
					"Action": "sts:AssumeRole", "Effect": "Allow",
					"Principal": obj{"Service": "lambda.amazonaws.com"},
				}}},
				"ManagedPolicyArns": assertions.Match_Absent(),
			})
		})
	}
}

// TestSchedules: a Schedule in the spec gives the function an EventBridge rule (segments and
// activation run every minute).
func TestSchedules(t *testing.T) {
	fixtures(t)
	check(t, "real: one rule per scheduled function", func() {
		fixReal.tpl.ResourceCountIs(typ("AWS::Events::Rule"), jsii.Number(2))
	})
	s := fixFuture.stack
	scheduled := 0
	for _, spec := range s.Specs {
		if spec.Schedule == "" {
			continue
		}
		scheduled++
		fnArn := arnOf(fixFuture.id(s.Functions[spec.Name]))
		check(t, "future: schedule of "+spec.Name, func() {
			fixFuture.tpl.HasResourceProperties(typ("AWS::Events::Rule"), obj{
				"ScheduleExpression": "rate(1 minute)",
				"State":              "ENABLED",
				"Targets": []obj{{
					"Arn":         fnArn,
					"RetryPolicy": obj{"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 2},
				}},
			})
			fixFuture.tpl.HasResourceProperties(typ("AWS::Lambda::Permission"), obj{
				"Action":       "lambda:InvokeFunction",
				"FunctionName": fnArn,
				"Principal":    "events.amazonaws.com",
				"SourceArn":    arnOf(fixFuture.id(s.Schedules[spec.Name])),
			})
		})
	}
	if scheduled != 2 {
		t.Fatalf("future fixture should have segments and activation on a schedule, has %d", scheduled)
	}
	check(t, "future: one rule per scheduled function", func() {
		fixFuture.tpl.ResourceCountIs(typ("AWS::Events::Rule"), jsii.Number(float64(scheduled)))
	})
}
