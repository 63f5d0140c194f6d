package replay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// errPause: the budget ended within an object; its progress is saved and a later run goes on.
var errPause = errors.New("replay: budget over")

// errFound stops a listing at the first key wanted.
var errFound = errors.New("found")

// step does one object (or finds there is none left) on j; more=false when the run should stop
// after saving (the budget ended, or the job completed).
func (rn *Runner) step(ctx context.Context, plan budget.Plan, st *runState, j *Job) (more bool, err error) {
	defer rn.progress(st, j)
	key, pos, err := rn.nextObject(ctx, plan, st, j)
	if err != nil {
		return false, err
	}
	if key == "" && pos != "" {
		j.Progress.Cursor = pos // the budget ended while listing empty hours
		return false, nil
	}
	if key == "" {
		j.Status, j.CompletedAt, j.Error, j.Attempts = StatusCompleted, rn.o.Now().UTC(), "", 0
		j.mask()
		return false, nil
	}
	done, err := rn.object(ctx, plan, st, j, key)
	if err != nil || !done {
		return false, err
	}
	j.Progress.Cursor, j.Progress.Partial, j.Progress.Line = key, "", 0
	j.Progress.ObjectsDone++
	j.Attempts, j.Error = 0, ""
	return true, nil
}

// hours are the archive hours a job reads: from the hour of From to the hour after the one To
// falls in (Firehose may archive a record received just before To under the next hour).
func hours(j *Job) (first, end time.Time) {
	return j.From.Truncate(time.Hour), j.To.Add(-time.Nanosecond).Truncate(time.Hour).Add(2 * time.Hour)
}

// parseCursor returns the source and hour of a key or an hour prefix.
func parseCursor(c string) (src string, hour time.Time, ok bool) {
	parts := strings.SplitN(c, "/", 4)
	if len(parts) < 3 {
		return "", time.Time{}, false
	}
	src, ok1 := strings.CutPrefix(parts[0], "source=")
	day, ok2 := strings.CutPrefix(parts[1], "dt=")
	hh, ok3 := strings.CutPrefix(parts[2], "hour=")
	t, err := time.Parse("2006-01-02 15", day+" "+hh)
	return src, t, ok1 && ok2 && ok3 && err == nil
}

// nextObject returns the first object after the cursor in key order (source by source, hour by
// hour). When the budget ends first it returns no key and pos, the hour prefix to go on from;
// neither when every object is done.
func (rn *Runner) nextObject(ctx context.Context, plan budget.Plan, st *runState, j *Job) (key, pos string, err error) {
	if j.Progress.Partial != "" {
		return j.Progress.Partial, "", nil
	}
	after := j.Progress.Cursor
	curSrc, curHour, has := parseCursor(after)
	first, end := hours(j)
	for _, src := range st.sources {
		if has && strings.Compare(src+"/", curSrc+"/") < 0 {
			continue
		}
		h := first
		if has && src == curSrc {
			h = curHour
		}
		for ; h.Before(end); h = h.Add(time.Hour) {
			prefix := archive.HourPrefix(src, h)
			if plan.Over() {
				return "", prefix, nil
			}
			err := rn.o.Archive.List(ctx, prefix, func(k string) error {
				if k > after && strings.HasSuffix(k, archive.Suffix) {
					key = k
					return errFound
				}
				return nil
			})
			if err != nil && !errors.Is(err, errFound) {
				return "", "", fmt.Errorf("list %s: %w", prefix, err)
			}
			if key != "" {
				return key, "", nil
			}
		}
	}
	return "", "", nil
}

// progress sets the source-hours read from the cursor.
func (rn *Runner) progress(st *runState, j *Job) {
	first, end := hours(j)
	per := int(end.Sub(first) / time.Hour)
	j.Progress.SourceHours = per * len(st.sources)
	if j.Status == StatusCompleted {
		j.Progress.SourceHoursDone = j.Progress.SourceHours
		return
	}
	at := j.Progress.Partial
	if at == "" {
		at = j.Progress.Cursor
	}
	src, h, ok := parseCursor(at)
	if i := slices.Index(st.sources, src); ok && i >= 0 {
		j.Progress.SourceHoursDone = i*per + int(h.Sub(first)/time.Hour)
	}
}

// batch is what one object's lines yield until it is sent: the records and the counts they
// move (applied to the job only once the records are sent, so a failed send counts nothing).
type batch struct {
	recs  []stream.Record
	delta Counts
	bad   []string
}

func (b *batch) skip(reason string) {
	if b.delta.Skipped == nil {
		b.delta.Skipped = map[string]int64{}
	}
	b.delta.Skipped[reason]++
}

// object reads one archive object from its saved line on; done=false when the budget ended
// within it (its progress is in j).
func (rn *Runner) object(ctx context.Context, plan budget.Plan, st *runState, j *Job, key string) (bool, error) {
	body, err := rn.o.Archive.Get(ctx, key)
	if errors.Is(err, archive.ErrNotFound) {
		return true, nil // removed since it was listed (e.g. a privacy erase)
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	start := 0
	if j.Progress.Partial == key {
		start = j.Progress.Line
	}
	b := &batch{}
	n := 0
	err = archive.Lines(body, func(line []byte) error {
		n++
		if n <= start {
			return nil
		}
		if err := rn.consider(ctx, st, j, key, n, line, b); err != nil {
			return err
		}
		if len(b.recs) < rn.o.Batch && !plan.Over() {
			return nil
		}
		if err := rn.checkpoint(ctx, j, b, key, n); err != nil {
			return err
		}
		if plan.Over() {
			return errPause
		}
		return nil
	})
	if errors.Is(err, errPause) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, rn.checkpoint(ctx, j, b, key, n)
}

// checkpoint sends the batch and moves the job's counts and line past it.
func (rn *Runner) checkpoint(ctx context.Context, j *Job, b *batch, key string, line int) error {
	if len(b.recs) > 0 {
		pub, name := rn.o.Pipeline, "events"
		if j.Target.Type == TargetDestination {
			pub, name = rn.o.Activations, "activations"
		}
		if pub == nil {
			return fmt.Errorf("no %s publisher configured", name)
		}
		if err := pub.Put(ctx, b.recs); err != nil {
			return fmt.Errorf("send %d records to %s: %w", len(b.recs), name, err)
		}
		b.delta.Sent += int64(len(b.recs))
	}
	j.Counts.Read += b.delta.Read
	j.Counts.Matched += b.delta.Matched
	j.Counts.Sent += b.delta.Sent
	if j.Counts.Skipped == nil {
		j.Counts.Skipped = map[string]int64{}
	}
	for r, n := range b.delta.Skipped {
		j.Counts.Skipped[r] += n
	}
	for _, at := range b.bad {
		if len(j.BadLines) < MaxBadLines {
			j.BadLines = append(j.BadLines, at)
		}
	}
	j.Progress.Partial, j.Progress.Line = key, line
	*b = batch{recs: b.recs[:0]}
	return nil
}

// consider decides one line: filtered, skipped for privacy, or added to the batch.
func (rn *Runner) consider(ctx context.Context, st *runState, j *Job, key string, n int, line []byte, b *batch) error {
	b.delta.Read++
	var rec tracking.Record
	if err := json.Unmarshal(line, &rec); err != nil || rec.Message.MessageID == "" {
		b.skip(SkipBadLine)
		b.bad = append(b.bad, fmt.Sprintf("%s#%d", key, n))
		return nil
	}
	if src, _, ok := archive.ParseKey(key); ok && rec.SourceID == "" {
		rec.SourceID = src
	}
	ids := rn.o.Identifiers(&rec.Message)
	if !matches(j, st, key, &rec.Message, ids) {
		b.skip(SkipFiltered)
		return nil
	}
	b.delta.Matched++
	suppressed, err := rn.o.Blocklist.Suppressed(ctx, ids)
	if err != nil {
		return fmt.Errorf("suppression check: %w", err)
	}
	if suppressed {
		b.skip(SkipSuppressed)
		return nil
	}
	if j.Target.Type == TargetPipeline {
		b.recs = append(b.recs, stream.Record{PartitionKey: rec.Message.PartitionKey(), Data: markReplay(line, j.ID)})
		return nil
	}
	return rn.forward(ctx, st, j, &rec, ids, b)
}

// destinationTypes are the message types a destination target forwards.
var destinationTypes = []string{tracking.TypeTrack, tracking.TypePage, tracking.TypeScreen, tracking.TypeIdentify}

// matches applies the job's filters: receivedAt in [From, To) (the object's hour when unset),
// any of the identifiers, any of the event names (a track's event, a page's or screen's name),
// and for a destination target the types it takes and its subscriptions.
func matches(j *Job, st *runState, key string, m *tracking.Message, ids []string) bool {
	at := m.ReceivedAt
	if at.IsZero() {
		_, at, _ = archive.ParseKey(key)
	}
	if at.Before(j.From) || !at.Before(j.To) {
		return false
	}
	if len(j.Identifiers) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(j.Identifiers, id) }) {
		return false
	}
	if len(j.Events) > 0 {
		name := m.Event
		if m.Type == tracking.TypePage || m.Type == tracking.TypeScreen {
			name = m.Name
		}
		if m.Type == tracking.TypeIdentify || m.Type == tracking.TypeGroup || m.Type == tracking.TypeAlias || !slices.Contains(j.Events, name) {
			return false
		}
	}
	if j.Target.Type != TargetDestination {
		return true
	}
	return slices.Contains(destinationTypes, m.Type) && (st.dest == nil || st.dest.Subscriptions.WantsEvent(m))
}

// maxProfileCache bounds the lookups remembered in one run.
const maxProfileCache = 10000

// forward adds a forwarded-event activation record for the destination target, about the
// profile holding the record's identifiers (skipped when none does, or it was erased).
func (rn *Runner) forward(ctx context.Context, st *runState, j *Job, rec *tracking.Record, ids []string, b *batch) error {
	if rn.o.Profiles == nil {
		return errors.New("no profile lookup configured")
	}
	ck := strings.Join(ids, "\x00")
	p, hit := st.profiles[ck]
	if !hit {
		var err error
		if p.id, p.ok, err = rn.o.Profiles.ProfileOf(ctx, ids); err != nil {
			return fmt.Errorf("profile lookup: %w", err)
		}
		if len(st.profiles) >= maxProfileCache {
			clear(st.profiles)
		}
		st.profiles[ck] = p
	}
	if !p.ok || len(ids) == 0 {
		b.skip(SkipUnresolved)
		return nil
	}
	erased, err := rn.o.Blocklist.Erased(ctx, p.id)
	if err != nil {
		return fmt.Errorf("erased-profile check: %w", err)
	}
	if erased {
		b.skip(SkipErasedProfile)
		return nil
	}
	m := rec.Message
	data, err := json.Marshal(activations.Record{
		ID: RecordID(p.id, rec.SourceID, m.MessageID), Kind: activations.KindEvent, ProfileID: p.id,
		UserID: m.UserID, AnonymousID: m.AnonymousID, Event: &m, OccurredAt: m.Timestamp, DestinationID: j.Target.DestinationID,
	})
	if err != nil {
		return fmt.Errorf("encode activation record: %w", err)
	}
	b.recs = append(b.recs, stream.Record{PartitionKey: p.id, Data: data})
	return nil
}

// RecordID is the activation record id of a replayed event: "evt-<profile>-r" and a hash of its
// source and messageId, so the same event replayed again is the same record (the delivery log
// dedupes it) and privacy finds it by profile (activations.ProfilePrefixes). The "r" keeps it
// apart from live forwarded events' ids.
func RecordID(profileID, sourceID, messageID string) string {
	sum := sha256.Sum256([]byte(sourceID + "\x00" + messageID))
	return "evt-" + profileID + "-r" + hex.EncodeToString(sum[:12])
}

// markReplay is the record's bytes with `"replay":"<job id>",` inserted after its opening
// brace: everything the record said is unchanged (identity reads it as before), and the
// archive files it apart so the replay never reads its own output back.
func markReplay(line []byte, jobID string) []byte {
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[0] != '{' {
		return bytes.Clone(line)
	}
	id, _ := json.Marshal(jobID)
	out := make([]byte, 0, len(line)+len(id)+12)
	out = append(out, '{')
	out = append(out, `"replay":`...)
	out = append(out, id...)
	if rest := bytes.TrimSpace(line[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, line[1:]...)
}
