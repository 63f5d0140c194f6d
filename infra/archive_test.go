package infra

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// TestArchiveBucket: the archive bucket is encrypted, private, TLS-only, unversioned (an
// erase must not leave old versions), retained, expires objects after the configured
// retention, and logs its access to a bucket of its own.
func TestArchiveBucket(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		private := obj{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
		sse := obj{"ServerSideEncryptionConfiguration": []obj{{"ServerSideEncryptionByDefault": obj{"SSEAlgorithm": "AES256"}}}}
		check(t, f.name+": two buckets, both encrypted, private and retained", func() {
			f.tpl.ResourceCountIs(typ("AWS::S3::Bucket"), jsii.Number(2))
			f.tpl.AllResources(typ("AWS::S3::Bucket"), obj{"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
			f.tpl.AllResourcesProperties(typ("AWS::S3::Bucket"), obj{
				"BucketEncryption":               sse,
				"PublicAccessBlockConfiguration": private,
				"OwnershipControls":              obj{"Rules": []obj{{"ObjectOwnership": "BucketOwnerEnforced"}}},
			})
		})
		check(t, f.name+": the archive expires objects after cdp:archiveRetentionDays and logs its access", func() {
			f.tpl.HasResourceProperties(typ("AWS::S3::Bucket"), obj{
				"LifecycleConfiguration": obj{"Rules": []obj{{
					"Id": "expire-archive", "Status": "Enabled",
					"ExpirationInDays":                     s.Config.ArchiveRetentionDays,
					"AbortIncompleteMultipartUpload":       obj{"DaysAfterInitiation": 1},
					"NoncurrentVersionExpiration":          assertions.Match_Absent(),
					"NoncurrentVersionExpirationInDays":    assertions.Match_Absent(),
					"ExpiredObjectDeleteMarker":            assertions.Match_Absent(),
					"AbortIncompleteMultipartUploadInDays": assertions.Match_Absent(),
					"TagFilters":                           assertions.Match_Absent(),
					"Prefix":                               assertions.Match_Absent(),
				}}},
				"VersioningConfiguration": assertions.Match_Absent(),
				"LoggingConfiguration": obj{
					"DestinationBucketName": ref(f.id(s.Archive.LogBucket)),
					"LogFilePrefix":         "archive/",
				},
			})
		})
		check(t, f.name+": access logs expire with the log retention", func() {
			f.tpl.HasResourceProperties(typ("AWS::S3::Bucket"), obj{
				"LifecycleConfiguration": obj{"Rules": []obj{{
					"Id": "expire-access-logs", "Status": "Enabled", "ExpirationInDays": s.Config.LogRetentionDays,
				}}},
			})
		})
		for _, b := range []string{f.id(s.Archive.Bucket), f.id(s.Archive.LogBucket)} {
			check(t, f.name+": bucket "+b+" denies plain HTTP", func() {
				f.tpl.HasResourceProperties(typ("AWS::S3::BucketPolicy"), obj{
					"Bucket": ref(b),
					"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]interface{}{
						assertions.Match_ObjectLike(&obj{
							"Effect": "Deny", "Action": "s3:*", "Principal": obj{"AWS": "*"},
							"Condition": obj{"Bool": obj{"aws:SecureTransport": "false"}},
						}),
					})},
				})
			})
		}
		check(t, f.name+": S3 may write the archive's access logs, and only into archive/", func() {
			f.tpl.HasResourceProperties(typ("AWS::S3::BucketPolicy"), obj{
				"Bucket": ref(f.id(s.Archive.LogBucket)),
				"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]interface{}{
					assertions.Match_ObjectLike(&obj{
						"Effect": "Allow", "Action": "s3:PutObject",
						"Principal": obj{"Service": "logging.s3.amazonaws.com"},
						"Resource":  obj{"Fn::Join": []interface{}{"", []interface{}{arnOf(f.id(s.Archive.LogBucket)), "/archive/*"}}},
					}),
				})},
			})
		})
		check(t, f.name+": ArchiveBucketName output", func() {
			f.tpl.HasOutput(typ("ArchiveBucketName"), obj{"Value": ref(f.id(s.Archive.Bucket))})
		})
	}
	if fixReal.stack.Config.ArchiveRetentionDays != 365 || fixFuture.stack.Config.ArchiveRetentionDays == 365 {
		t.Fatal("the fixtures should exercise the default and another archive retention")
	}
}

// TestArchiveDelivery: Firehose reads the events stream and writes the layout
// internal/archive reads: source=<sourceId>/dt=YYYY-MM-DD/hour=HH/*.json.gz, gzip NDJSON.
func TestArchiveDelivery(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		role := arnOf(f.id(s.Archive.Role))
		check(t, f.name+": one delivery stream from the events stream to the archive bucket", func() {
			f.tpl.ResourceCountIs(typ("AWS::KinesisFirehose::DeliveryStream"), jsii.Number(1))
			f.tpl.HasResource(typ("AWS::KinesisFirehose::DeliveryStream"), obj{
				"DependsOn": assertions.Match_ArrayWith(&[]interface{}{f.id(s.Archive.Policy)}),
				"Properties": obj{
					"DeliveryStreamType": "KinesisStreamAsSource",
					"KinesisStreamSourceConfiguration": obj{
						"KinesisStreamARN": arnOf(f.id(s.Streams[StreamEvents])),
						"RoleARN":          role,
					},
					"ExtendedS3DestinationConfiguration": obj{
						"BucketARN":                        arnOf(f.id(s.Archive.Bucket)),
						"RoleARN":                          role,
						"Prefix":                           "source=!{partitionKeyFromQuery:source}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/",
						"ErrorOutputPrefix":                "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/",
						"CompressionFormat":                "GZIP",
						"FileExtension":                    ".json.gz",
						"BufferingHints":                   obj{"IntervalInSeconds": 900, "SizeInMBs": 128},
						"DynamicPartitioningConfiguration": obj{"Enabled": true},
						"ProcessingConfiguration": obj{"Enabled": true, "Processors": []obj{
							{"Type": "MetadataExtraction", "Parameters": []obj{
								{"ParameterName": "MetadataExtractionQuery", "ParameterValue": `{source: (if .replay then "_replay" else .sourceId end)}`},
								{"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
							}},
							{"Type": "AppendDelimiterToRecord", "Parameters": []obj{
								{"ParameterName": "Delimiter", "ParameterValue": "\\n"},
							}},
						}},
						"CloudWatchLoggingOptions": obj{
							"Enabled": true, "LogGroupName": ref(f.id(s.Archive.Logs)), "LogStreamName": ArchiveLogStream,
						},
						"EncryptionConfiguration":           assertions.Match_Absent(),
						"DataFormatConversionConfiguration": assertions.Match_Absent(),
						"S3BackupMode":                      assertions.Match_Absent(),
					},
				},
			})
		})
		check(t, f.name+": delivery errors are logged to a stream that exists", func() {
			f.tpl.HasResourceProperties(typ("AWS::Logs::LogStream"), obj{
				"LogGroupName": ref(f.id(s.Archive.Logs)), "LogStreamName": ArchiveLogStream,
			})
		})
	}
}

// TestArchiveLayoutMatchesReader: the prefix Firehose evaluates, with a source, day and hour
// filled in, is a key internal/archive parses (the infra module cannot import it, so the
// layout's literal parts are checked here against the reader's documented form).
func TestArchiveLayoutMatchesReader(t *testing.T) {
	key := strings.NewReplacer(
		"!{partitionKeyFromQuery:source}", "web",
		"!{timestamp:yyyy-MM-dd}", "2026-11-30",
		"!{timestamp:HH}", "07",
	).Replace(ArchivePrefix) + "cdp-archive-1-2026-11-30-07-15-00-uuid" + ArchiveFileExtension
	if key != "source=web/dt=2026-11-30/hour=07/cdp-archive-1-2026-11-30-07-15-00-uuid.json.gz" {
		t.Errorf("Firehose would write %q, outside internal/archive's layout", key)
	}
	if strings.HasPrefix(ArchiveErrorPrefix, "source=") {
		t.Errorf("error prefix %q is inside the source= tree a replay reads", ArchiveErrorPrefix)
	}
}

// TestBenchPricesThisStack: the benchmark's cost model (internal/bench/prices.go, in the
// root module, which cannot import this one) prices this stack's alarm count and archive
// buffering; a change here without one there fails.
func TestBenchPricesThisStack(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "internal", "bench", "prices.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"CloudWatchAlarms": StandardAlarms, "ArchiveBufferSeconds": ArchiveBufferSeconds, "ArchiveBufferMB": ArchiveBufferMB,
	} {
		m := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*(\d+)`).FindSubmatch(b)
		if m == nil {
			t.Errorf("prices.go has no constant %s", name)
			continue
		}
		if got, _ := strconv.Atoi(string(m[1])); got != want {
			t.Errorf("prices.go %s = %d, the stack has %d", name, got, want)
		}
	}
}
