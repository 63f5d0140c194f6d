package infra

import (
	"reflect"
	"strings"
	"testing"
)

func lookup(m map[string]interface{}) func(string) interface{} {
	return func(k string) interface{} { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromContext(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("no context should give the defaults:\n got %+v\nwant %+v", c, DefaultConfig())
	}
	if c.LogRetentionDays != 30 || c.AllowedOrigins[0] != "*" || c.StreamMode != StreamModeProvisioned || c.ShardCount != 1 || c.StreamRetention != 24 || c.Dashboard || !c.DeletionProtection || c.ArchiveRetentionDays != 365 {
		t.Errorf("defaults drifted from the documented ones: %+v", c)
	}
}

func TestConfigFromCLIStringsAndJSONTypes(t *testing.T) {
	// -c values arrive as strings; cdk.json values as JSON numbers, booleans and lists.
	for name, ctx := range map[string]map[string]interface{}{
		"cli": {
			CtxStage: "prod", CtxLogRetentionDays: "90", CtxAllowedOrigins: "https://a.example.com, https://b.example.com",
			CtxThrottleRateLimit: "50.5", CtxThrottleBurstLimit: "100", CtxShardCount: "4", CtxStreamMode: "on-demand", CtxDashboard: "true",
			CtxBatchSize: "500", CtxMaxBatchingWindowSecs: "0", CtxParallelizationFactor: "2",
			CtxDeletionProtection: "false", CtxDomainName: "cdp.example.com",
			CtxCertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
			CtxLogLevel:       "debug", CtxStreamRetentionHours: "48", CtxArchiveRetentionDays: "730",
		},
		"json": {
			CtxStage: "prod", CtxLogRetentionDays: 90.0, CtxAllowedOrigins: []interface{}{"https://a.example.com", "https://b.example.com"},
			CtxThrottleRateLimit: 50.5, CtxThrottleBurstLimit: 100.0, CtxShardCount: 4.0, CtxStreamMode: "on-demand", CtxDashboard: true,
			CtxBatchSize: 500.0, CtxMaxBatchingWindowSecs: 0.0, CtxParallelizationFactor: 2.0,
			CtxDeletionProtection: false, CtxDomainName: "cdp.example.com",
			CtxCertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
			CtxLogLevel:       "debug", CtxStreamRetentionHours: 48.0, CtxArchiveRetentionDays: 730.0,
		},
	} {
		c, err := ConfigFromContext(lookup(ctx))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := DefaultConfig()
		want.Stage, want.LogRetentionDays, want.LogLevel = "prod", 90, "debug"
		want.AllowedOrigins = []string{"https://a.example.com", "https://b.example.com"}
		want.ThrottleRateLimit, want.ThrottleBurstLimit = 50.5, 100
		want.ShardCount, want.BatchSize, want.MaxBatchingWindow, want.Parallelization = 4, 500, 0, 2
		want.DeletionProtection, want.StreamRetention, want.ArchiveRetentionDays = false, 48, 730
		want.StreamMode, want.Dashboard = StreamModeOnDemand, true
		want.DomainName, want.CertificateArn = "cdp.example.com", "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, c, want)
		}
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		ctx  map[string]interface{}
		want string
	}{
		{map[string]interface{}{CtxStage: "Prod_1"}, CtxStage},
		{map[string]interface{}{CtxLogRetentionDays: "31"}, "not a CloudWatch Logs retention"},
		{map[string]interface{}{CtxLogRetentionDays: 1.5}, "whole number"},
		{map[string]interface{}{CtxAllowedOrigins: "*,https://a.example.com"}, "cannot be combined"},
		{map[string]interface{}{CtxAllowedOrigins: "example.com"}, "is not an origin"},
		{map[string]interface{}{CtxAllowedOrigins: " , "}, "at least one origin"},
		{map[string]interface{}{CtxDomainName: "cdp.example.com"}, "must be set together"},
		{map[string]interface{}{CtxDomainName: "x.example.com", CtxCertificateArn: "arn:aws:iam::1:role/x"}, "not an ACM certificate"},
		{map[string]interface{}{CtxShardCount: "-1"}, CtxShardCount},
		{map[string]interface{}{CtxShardCount: "0"}, CtxShardCount},
		{map[string]interface{}{CtxStreamMode: "ondemand"}, CtxStreamMode},
		{map[string]interface{}{CtxDashboard: "yes"}, "true or false"},
		{map[string]interface{}{CtxParallelizationFactor: "11"}, CtxParallelizationFactor},
		{map[string]interface{}{CtxDeletionProtection: "maybe"}, "true or false"},
		{map[string]interface{}{CtxThrottleRateLimit: "0"}, CtxThrottleRateLimit},
		{map[string]interface{}{CtxLogLevel: "trace"}, CtxLogLevel},
		{map[string]interface{}{CtxAlarmTopicArn: "ops"}, "not an SNS topic ARN"},
		{map[string]interface{}{CtxStreamRetentionHours: "12"}, CtxStreamRetentionHours},
		{map[string]interface{}{CtxStage: 7.0}, "want a string"},
		{map[string]interface{}{CtxArchiveRetentionDays: "0"}, CtxArchiveRetentionDays},
		{map[string]interface{}{CtxArchiveRetentionDays: "3651"}, CtxArchiveRetentionDays},
		{map[string]interface{}{CtxArchiveRetentionDays: 30.5}, "whole number"},
	} {
		_, err := ConfigFromContext(lookup(c.ctx))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want an error mentioning %q, got %v", c.ctx, c.want, err)
		}
	}
}
