package infra

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Context keys read by the app. They are namespaced with "cdp:" so they cannot collide
// with CDK feature flags in cdk.json. Pass them with `cdk synth -c cdp:stage=prod`.
const (
	CtxStage                 = "cdp:stage"
	CtxLogRetentionDays      = "cdp:logRetentionDays"
	CtxLogLevel              = "cdp:logLevel"
	CtxAllowedOrigins        = "cdp:allowedOrigins"
	CtxThrottleRateLimit     = "cdp:throttleRateLimit"
	CtxThrottleBurstLimit    = "cdp:throttleBurstLimit"
	CtxStreamMode            = "cdp:streamMode"
	CtxShardCount            = "cdp:shardCount"
	CtxStreamRetentionHours  = "cdp:streamRetentionHours"
	CtxBatchSize             = "cdp:batchSize"
	CtxMaxBatchingWindowSecs = "cdp:maxBatchingWindowSeconds"
	CtxParallelizationFactor = "cdp:parallelizationFactor"
	CtxDeletionProtection    = "cdp:deletionProtection"
	CtxDomainName            = "cdp:domainName"
	CtxCertificateArn        = "cdp:certificateArn"
	CtxAlarmTopicArn         = "cdp:alarmTopicArn"
	CtxDashboard             = "cdp:dashboard"
	CtxAssetRoot             = "cdp:assetRoot"
	CtxArchiveRetentionDays  = "cdp:archiveRetentionDays"
)

// Config is everything an operator may tune without editing code. Zero values are never
// used directly: DefaultConfig and ConfigFromContext always return a complete Config.
type Config struct {
	Stage              string   // names the stack (cdp-<stage>), API, alarms and dashboard
	LogRetentionDays   int      // CloudWatch retention for function and access logs
	LogLevel           string   // LOG_LEVEL for every function
	AllowedOrigins     []string // CDP_ALLOWED_ORIGINS; the functions answer CORS themselves
	ThrottleRateLimit  float64  // $default stage steady-state requests per second
	ThrottleBurstLimit int      // $default stage burst
	StreamMode         string   // StreamModeProvisioned (default) or StreamModeOnDemand
	ShardCount         int      // shards per stream in provisioned mode (ignored on-demand)
	StreamRetention    int      // hours a record stays replayable in Kinesis
	BatchSize          int      // Kinesis records per invocation
	MaxBatchingWindow  int      // seconds Lambda may wait to fill a batch
	Parallelization    int      // concurrent batches per shard (order kept per partition key)
	DeletionProtection bool     // DynamoDB deletion protection (the table is RETAINed regardless)
	DomainName         string   // optional custom domain for the HTTP API
	CertificateArn     string   // ACM certificate for DomainName, same region as the stack
	AlarmTopicArn      string   // optional existing SNS topic that receives alarm notifications
	Dashboard          bool     // a CloudWatch dashboard ($3 per month outside the free tier); off by default
	AssetRoot          string   // directory holding <function>/bootstrap (the Makefile's build/)
	// ArchiveRetentionDays is how long the raw event archive (S3) keeps an object: the
	// lifecycle rule expires it this many days after Firehose wrote it.
	ArchiveRetentionDays int
}

// Bounds of cdp:archiveRetentionDays: at least a day, at most ten years.
const (
	MinArchiveRetentionDays = 1
	MaxArchiveRetentionDays = 3650
)

// Stream capacity modes (cdp:streamMode).
const (
	// StreamModeProvisioned bills shard-hours ($0.015 per shard-hour in us-east-1, about $11 per
	// stream and month with one shard) plus PUT payload units; it is the default so that a stack
	// without traffic costs little. One shard takes 1 MB/s or 1,000 records/s of writes and
	// serves 2 MB/s of reads per consumer; scale with UpdateShardCount (see infra/README.md).
	StreamModeProvisioned = "provisioned"
	// StreamModeOnDemand bills $0.04 per stream-hour plus ingested and retrieved gigabytes and
	// scales by itself.
	StreamModeOnDemand = "on-demand"
)

// DefaultConfig is what a fresh clone synthesizes with no -c flags.
func DefaultConfig() Config {
	return Config{
		Stage:              "dev",
		LogRetentionDays:   30,
		LogLevel:           "info",
		AllowedOrigins:     []string{"*"},
		ThrottleRateLimit:  1000,
		ThrottleBurstLimit: 2000,
		StreamMode:         StreamModeProvisioned,
		ShardCount:         1,
		// 24 h is the retention included in the shard-hour price; longer ("extended") retention
		// costs $0.02 per shard-hour more, which would more than double the fixed cost. Parked
		// batches (metadata in the on-failure queue) must be replayed while their records are
		// in the stream: MaxRecordAge (half the retention) leaves at least 12 h for that, and the
		// dead-letter alarm fires at once. Raise it with cdp:streamRetentionHours=168.
		StreamRetention:    24,
		BatchSize:          100,
		MaxBatchingWindow:  1,
		Parallelization:    1,
		DeletionProtection: true,
		AssetRoot:          "build",
		// A year of raw history: enough to replay a season or rebuild after a bug found late;
		// lower it (or raise it) with cdp:archiveRetentionDays.
		ArchiveRetentionDays: 365,
	}
}

// validRetentionDays are the only values CloudWatch Logs accepts.
var validRetentionDays = map[int]bool{
	1: true, 3: true, 5: true, 7: true, 14: true, 30: true, 60: true, 90: true, 120: true,
	150: true, 180: true, 365: true, 400: true, 545: true, 731: true, 1096: true, 1827: true,
	2192: true, 2557: true, 2922: true, 3288: true, 3653: true,
}

var (
	stageRe  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	domainRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	acmRe    = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$`)
	snsRe    = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$`)
	originRe = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:\d{1,5})?$`)
)

// ConfigFromContext reads the cdp:* context values through get (app.Node().TryGetContext in
// the app, a map in unit tests). Values from `-c` arrive as strings and values from
// cdk.json as JSON types, so every parser accepts both.
func ConfigFromContext(get func(key string) interface{}) (Config, error) {
	c := DefaultConfig()
	var errs []string
	fail := func(key string, err error) { errs = append(errs, fmt.Sprintf("%s: %v", key, err)) }

	str := func(key string, dst *string) {
		if v := get(key); v != nil {
			s, ok := v.(string)
			if !ok {
				fail(key, fmt.Errorf("want a string, got %T", v))
				return
			}
			*dst = strings.TrimSpace(s)
		}
	}
	integer := func(key string, dst *int, lo, hi int) {
		if v := get(key); v != nil {
			n, err := toInt(v)
			if err == nil && (n < lo || n > hi) {
				err = fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
			}
			if err != nil {
				fail(key, err)
				return
			}
			*dst = n
		}
	}

	str(CtxStage, &c.Stage)
	integer(CtxLogRetentionDays, &c.LogRetentionDays, 1, 3653)
	str(CtxLogLevel, &c.LogLevel)
	if v := get(CtxAllowedOrigins); v != nil {
		o, err := toStrings(v)
		if err != nil {
			fail(CtxAllowedOrigins, err)
		} else {
			c.AllowedOrigins = o
		}
	}
	if v := get(CtxThrottleRateLimit); v != nil {
		if f, err := toRate(v); err != nil {
			fail(CtxThrottleRateLimit, err)
		} else {
			c.ThrottleRateLimit = f
		}
	}
	str(CtxStreamMode, &c.StreamMode)
	integer(CtxThrottleBurstLimit, &c.ThrottleBurstLimit, 1, 1_000_000)
	integer(CtxShardCount, &c.ShardCount, 1, 500)
	integer(CtxStreamRetentionHours, &c.StreamRetention, 24, 8760)
	integer(CtxBatchSize, &c.BatchSize, 1, 10_000)
	integer(CtxMaxBatchingWindowSecs, &c.MaxBatchingWindow, 0, 300)
	integer(CtxParallelizationFactor, &c.Parallelization, 1, 10)
	integer(CtxArchiveRetentionDays, &c.ArchiveRetentionDays, MinArchiveRetentionDays, MaxArchiveRetentionDays)
	for key, dst := range map[string]*bool{CtxDeletionProtection: &c.DeletionProtection, CtxDashboard: &c.Dashboard} {
		if v := get(key); v != nil {
			if b, err := toBool(v); err != nil {
				fail(key, err)
			} else {
				*dst = b
			}
		}
	}
	str(CtxDomainName, &c.DomainName)
	str(CtxCertificateArn, &c.CertificateArn)
	str(CtxAlarmTopicArn, &c.AlarmTopicArn)
	str(CtxAssetRoot, &c.AssetRoot)

	if err := c.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid context: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Validate checks the cross-field rules; ConfigFromContext calls it, and so does NewStack,
// so a hand-built Config in a test gets the same checks.
func (c Config) Validate() error {
	var errs []string
	for _, check := range []func() []string{c.loggingErrors, c.originErrors, c.domainErrors, c.capacityErrors} {
		errs = append(errs, check()...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// loggingErrors checks the stage name, log retention and log level.
func (c Config) loggingErrors() []string {
	var errs []string
	if !stageRe.MatchString(c.Stage) {
		errs = append(errs, fmt.Sprintf("%s %q must match %s (it becomes part of the stack name)", CtxStage, c.Stage, stageRe))
	}
	if !validRetentionDays[c.LogRetentionDays] {
		errs = append(errs, fmt.Sprintf("%s %d is not a CloudWatch Logs retention (one of %s)", CtxLogRetentionDays, c.LogRetentionDays, retentionList()))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("%s %q must be debug, info, warn or error", CtxLogLevel, c.LogLevel))
	}
	return errs
}

// originErrors checks the CORS origins: at least one, and * alone.
func (c Config) originErrors() []string {
	var errs []string
	if len(c.AllowedOrigins) == 0 {
		errs = append(errs, fmt.Sprintf("%s must name at least one origin, or *", CtxAllowedOrigins))
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" && len(c.AllowedOrigins) > 1 {
			errs = append(errs, fmt.Sprintf("%s: * cannot be combined with other origins", CtxAllowedOrigins))
		} else if o != "*" && !originRe.MatchString(o) {
			errs = append(errs, fmt.Sprintf("%s: %q is not an origin like https://www.example.com", CtxAllowedOrigins, o))
		}
	}
	return errs
}

// domainErrors checks the custom domain, its certificate and the alarm topic.
func (c Config) domainErrors() []string {
	var errs []string
	if (c.DomainName == "") != (c.CertificateArn == "") {
		errs = append(errs, fmt.Sprintf("%s and %s must be set together", CtxDomainName, CtxCertificateArn))
	}
	if c.DomainName != "" && !domainRe.MatchString(c.DomainName) {
		errs = append(errs, fmt.Sprintf("%s %q is not a lower-case DNS name", CtxDomainName, c.DomainName))
	}
	if c.CertificateArn != "" && !acmRe.MatchString(c.CertificateArn) {
		errs = append(errs, fmt.Sprintf("%s %q is not an ACM certificate ARN", CtxCertificateArn, c.CertificateArn))
	}
	if c.AlarmTopicArn != "" && !snsRe.MatchString(c.AlarmTopicArn) {
		errs = append(errs, fmt.Sprintf("%s %q is not an SNS topic ARN", CtxAlarmTopicArn, c.AlarmTopicArn))
	}
	return errs
}

// capacityErrors checks throttling, the stream event sources, retention, shards and assets.
func (c Config) capacityErrors() []string {
	var errs []string
	if c.ThrottleRateLimit <= 0 || c.ThrottleBurstLimit <= 0 {
		errs = append(errs, "throttling limits must be positive")
	}
	if c.BatchSize < 1 || c.Parallelization < 1 || c.Parallelization > 10 || c.MaxBatchingWindow < 0 || c.MaxBatchingWindow > 300 {
		errs = append(errs, "batch size, parallelization factor (1-10) or batching window (0-300 s) out of range")
	}
	if c.StreamRetention < 24 || c.StreamRetention > 8760 {
		errs = append(errs, fmt.Sprintf("%s %d is outside [24, 8760]", CtxStreamRetentionHours, c.StreamRetention))
	}
	if c.StreamMode != StreamModeProvisioned && c.StreamMode != StreamModeOnDemand {
		errs = append(errs, fmt.Sprintf("%s %q must be %s or %s", CtxStreamMode, c.StreamMode, StreamModeProvisioned, StreamModeOnDemand))
	}
	if c.ShardCount < 1 {
		errs = append(errs, fmt.Sprintf("%s must be at least 1 (for on-demand streams set %s=%s)", CtxShardCount, CtxStreamMode, StreamModeOnDemand))
	}
	if c.ArchiveRetentionDays < MinArchiveRetentionDays || c.ArchiveRetentionDays > MaxArchiveRetentionDays {
		errs = append(errs, fmt.Sprintf("%s %d is outside [%d, %d]", CtxArchiveRetentionDays, c.ArchiveRetentionDays, MinArchiveRetentionDays, MaxArchiveRetentionDays))
	}
	if c.AssetRoot == "" {
		errs = append(errs, fmt.Sprintf("%s must not be empty", CtxAssetRoot))
	}
	return errs
}

func retentionList() string {
	days := make([]int, 0, len(validRetentionDays))
	for d := range validRetentionDays {
		days = append(days, d)
	}
	sort.Ints(days)
	parts := make([]string, len(days))
	for i, d := range days {
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, ", ")
}

func toInt(v interface{}) (int, error) {
	switch t := v.(type) {
	case int:
		return t, nil
	case float64:
		if t != math.Trunc(t) || math.Abs(t) > 1e9 {
			return 0, fmt.Errorf("%v is not a whole number", t)
		}
		return int(t), nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(t))
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", t)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// toRate is a throttling rate: a number in (0, 1e6].
func toRate(v interface{}) (float64, error) {
	f, err := toFloat(v)
	if err == nil && (f <= 0 || f > 1e6) {
		err = fmt.Errorf("%v is outside (0, 1e6]", f)
	}
	return f, err
}

func toFloat(v interface{}) (float64, error) {
	switch t := v.(type) {
	case int:
		return float64(t), nil
	case float64:
		return t, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", t)
		}
		return f, nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

func toBool(v interface{}) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(t))
		if err != nil {
			return false, fmt.Errorf("%q is not true or false", t)
		}
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %T", v)
}

// toStrings accepts "a,b" (from -c) or ["a","b"] (from cdk.json).
func toStrings(v interface{}) ([]string, error) {
	var raw []string
	switch t := v.(type) {
	case string:
		raw = strings.Split(t, ",")
	case []interface{}:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want strings, got %T", e)
			}
			raw = append(raw, s)
		}
	case []string:
		raw = t
	default:
		return nil, fmt.Errorf("want a comma-separated string or a list, got %T", v)
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
