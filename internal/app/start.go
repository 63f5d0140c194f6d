package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/awsenv"
)

// Start is the body of every functions/<name>/main.go: read the configuration once, build the
// AWS clients, wire the handler with build, and hand it to the Lambda runtime.
func Start(name string, build func(c awsenv.Clients, cfg Config, logger *slog.Logger) any) {
	cfg, err := FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", name, err)
		os.Exit(1)
	}
	logger := cfg.Logger().With("function", name)
	clients, err := awsenv.Load(context.Background(), logger)
	if err != nil {
		logger.Error("aws configuration", "err", err)
		os.Exit(1)
	}
	if err := loadPrivacyKey(&cfg, name); err != nil {
		logger.Error("privacy key", "err", err)
		os.Exit(1)
	}
	lambda.Start(build(clients, cfg, logger))
}

// loadPrivacyKey reads the privacy key from its secret when one is configured. Every function
// but ingest hashes identifiers or profile ids for the blocklist, so they refuse to start
// without a key rather than hash under an empty one.
func loadPrivacyKey(cfg *Config, name string) error {
	if cfg.PrivacyKeySecret != "" && len(cfg.PrivacyKey) == 0 {
		v, err := awsenv.SecretString(context.Background(), cfg.PrivacyKeySecret)
		if err != nil {
			return err
		}
		if err := cfg.SetPrivacyKey(v); err != nil {
			return err
		}
	}
	if len(cfg.PrivacyKey) == 0 && name != "ingest" {
		return fmt.Errorf("set CDP_PRIVACY_KEY_SECRET (a Secrets Manager secret) or CDP_PRIVACY_KEY (at least %d bytes)", MinPrivacyKeyBytes)
	}
	return nil
}
