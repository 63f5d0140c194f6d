// Package privacyfn is the composition root of privacy requests: the one list of stores that
// hold data about a person (export walks it, delete walks the same list), the blocklist every
// stage checks, and the notifier. functions/privacy runs it every minute; functions/api runs a
// new request inline first (NewService). The local runner calls the same constructors.
package privacyfn

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/activationfn"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/replay"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// InlineBudget is how long the API runs a new request before answering: most of API
// Gateway's 29 s, so a delete usually answers completed; the schedule finishes the rest.
const InlineBudget = 20 * time.Second

var _ privacy.Blocklist = (*blocklist.DynamoStore)(nil)

// ArchiveWindow is how far back the archive's privacy holder reads: the archive's default
// retention (infra: cdp:archiveRetentionDays) and the day or two S3 takes to expire objects.
const ArchiveWindow = 367 * 24 * time.Hour

// Archive lags: how long after an erase an event can still land in the archive (the archive
// holder's follow-up erase runs after it).
const (
	// FirehoseArchiveLag: Firehose buffers up to 15 minutes (infra ArchiveBufferSeconds = 900)
	// before writing to S3, and 5 minutes of margin for delivery retries.
	FirehoseArchiveLag = 20 * time.Minute
	// LocalArchiveLag: the local writer archives a batch as soon as its poller reads it (at
	// most a second idle, a second between retries after an error), with margin.
	LocalArchiveLag = 15 * time.Second
)

// ArchiveLag is cfg.ArchiveLag (CDP_ARCHIVE_LAG_SECONDS) if set, else FirehoseArchiveLag for
// an archive in S3 and LocalArchiveLag for a folder.
func ArchiveLag(cfg app.Config) time.Duration {
	switch {
	case cfg.ArchiveLag > 0:
		return cfg.ArchiveLag
	case strings.HasPrefix(cfg.Archive, "s3://"):
		return FirehoseArchiveLag
	}
	return LocalArchiveLag
}

// NewArchive is the raw event archive's store (cfg.Archive: S3 on AWS, a folder locally), nil
// when none is configured.
func NewArchive(c awsenv.Clients, cfg app.Config) archive.Store {
	if cfg.Archive == "" {
		return nil
	}
	st, err := archive.Open(c.AWS, cfg.Archive, awsenv.Local())
	if err != nil {
		return nil // Open fails only for an empty location or "s3://" without a bucket
	}
	return st
}

// New wires the runner over every store that keeps data about a person. Order matters only
// for erasure: identity, whose index resolves identifiers, goes after the stores found by
// profile id or identifier, and the privacy requests themselves last.
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *privacy.Runner {
	db, table := c.DynamoDB, cfg.Table
	requests := privacy.NewDynamoStore(db, table)
	people := identity.NewPrivacy(identity.NewStore(db, table), identity.PrivacyOptions{})
	deliverer := activationfn.New(c, cfg, logger)
	holders := []privacy.Holder{
		deliverer.Holder(),
		segment.NewHolder(segment.NewStore(db, table), nil),
		deadletter.NewHolder(deadletter.NewStore(db, table)),
	}
	if st := NewArchive(c, cfg); st != nil {
		holders = append(holders, archive.NewHolder(st, archive.HolderOptions{
			Identifiers: identity.MessageIdentifiers, Window: ArchiveWindow, Lag: ArchiveLag(cfg), Hasher: cfg.Hasher(),
		}))
	}
	holders = append(holders, people, privacy.NewRequestsHolder(requests, cfg.Hasher()))
	return privacy.NewRunner(privacy.Options{
		Requests:  requests,
		Resolver:  people,
		Holders:   holders,
		Blocklist: cfg.Blocklist(c.DynamoDB),
		Notifier:  deliverer,
		Hasher:    cfg.Hasher(),
		Logger:    logger,
	})
}

// NewService is the admin API's privacy service: it runs a new request inline for up to
// InlineBudget.
func NewService(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *privacy.Service {
	return privacy.NewService(New(c, cfg, logger), suppressions{cfg.Blocklist(c.DynamoDB)},
		privacy.ServiceOptions{InlineBudget: InlineBudget, Logger: logger})
}

// NewReplay wires the replay runner: archive → the events stream (pipeline target) or the
// activations stream (one destination). Without an archive its service refuses new jobs.
func NewReplay(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *replay.Runner {
	st := NewArchive(c, cfg)
	db, table := c.DynamoDB, cfg.Table
	return replay.NewRunner(replay.Options{
		Jobs:         replay.NewDynamoStore(db, table),
		Archive:      st,
		Pipeline:     stream.NewPublisher(c.Kinesis, cfg.EventsStream),
		Activations:  stream.NewPublisher(c.Kinesis, cfg.ActivationsStream),
		Blocklist:    cfg.Checker(c.DynamoDB),
		Profiles:     profiles{identity.NewPrivacy(identity.NewStore(db, table), identity.PrivacyOptions{})},
		Destinations: activationfn.NewDestinations(c, cfg),
		Identifiers:  identity.MessageIdentifiers,
		Logger:       logger,
	})
}

// NewReplayService is the admin API's replay service: a new job runs inline for up to
// InlineBudget, the schedule finishes it.
func NewReplayService(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *replay.Service {
	return replay.NewService(NewReplay(c, cfg, logger), replay.ServiceOptions{InlineBudget: InlineBudget, Logger: logger})
}

// profiles finds the profile a replayed event is about (read-only, strongly consistent): one
// of the person's profiles, so a privacy request finds the delivery by its record id.
type profiles struct{ p *identity.Privacy }

func (p profiles) ProfileOf(ctx context.Context, identifiers []string) (string, bool, error) {
	person, err := p.p.Resolve(ctx, identifiers)
	if err != nil || len(person.Profiles) == 0 {
		return "", false, err
	}
	return person.Profiles[0], true, nil
}

// suppressions shows the blocklist's groups as the privacy service's port.
type suppressions struct{ s *blocklist.DynamoStore }

func (s suppressions) Suppressions(ctx context.Context) ([]privacy.SuppressionGroup, error) {
	groups, err := s.s.Suppressions(ctx)
	out := make([]privacy.SuppressionGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, privacy.SuppressionGroup{Group: g.Group, Labels: g.Labels, CreatedAt: g.CreatedAt})
	}
	return out, err
}

func (s suppressions) DroppedBySource(ctx context.Context) (map[string]int64, error) {
	return s.s.DroppedBySource(ctx)
}
