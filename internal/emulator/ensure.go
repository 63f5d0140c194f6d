package emulator

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
)

// Ensure makes the AWS endpoints of this process point at working emulators, the way the
// commands (local runner, benchmark) need them: when AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_KINESIS are both set (LocalStack, or emulators started elsewhere) nothing is
// started; otherwise the emulators are started, or reused, on CDP_DYNAMODB_PORT (8000) and
// CDP_KINESIS_PORT (4567), and the variables are set. Dummy credentials and a region are set
// when none are configured. The returned Stack (nil when nothing was started) stops what was
// started.
func Ensure(ctx context.Context, logger *slog.Logger) (*Stack, error) {
	var stack *Stack
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" || os.Getenv("AWS_ENDPOINT_URL_KINESIS") == "" {
		cfg, err := DefaultConfig(".")
		if err != nil {
			return nil, err
		}
		cfg.Logger = logger
		if cfg.DynamoDBPort, err = envPort("CDP_DYNAMODB_PORT", cfg.DynamoDBPort); err != nil {
			return nil, err
		}
		if cfg.KinesisPort, err = envPort("CDP_KINESIS_PORT", cfg.KinesisPort); err != nil {
			return nil, err
		}
		if stack, err = Start(ctx, cfg); err != nil {
			return nil, err
		}
		os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.DynamoDBEndpoint)
		os.Setenv("AWS_ENDPOINT_URL_KINESIS", stack.KinesisEndpoint)
	} else if logger != nil {
		logger.Info("using configured endpoints", "dynamodb", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "kinesis", os.Getenv("AWS_ENDPOINT_URL_KINESIS"))
	}
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return stack, nil
}

func envPort(key string, def int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s=%q: want a TCP port", key, v)
	}
	return n, nil
}
