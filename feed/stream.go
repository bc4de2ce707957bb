package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// streamConfig is the stream marquee creates: the feed subjects, file
// storage, limits retention keeping MaxMsgsPerSubject per subject, discard
// old, StreamReplicas replicas.
func (c Config) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              c.Stream,
		Description:       "marquee feeds: the last messages per subject",
		Subjects:          []string{subjectsFor(c.SubjectPrefix)},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: c.MaxMsgsPerSubject,
		Discard:           jetstream.DiscardOld,
		Replicas:          c.StreamReplicas,
		Duplicates:        c.DuplicateWindow,
	}
}

// managed returns have with the settings ManageStream owns set as marquee
// wants them (the duplicate window at least DuplicateWindow), and whether that changes anything. Storage cannot change on
// update and is left alone, like everything else marquee has no opinion on.
func (c Config) managed(have jetstream.StreamConfig) (jetstream.StreamConfig, bool) {
	want := c.streamConfig()
	out := have
	out.Subjects = want.Subjects
	out.Retention = want.Retention
	out.MaxMsgsPerSubject = want.MaxMsgsPerSubject
	out.Discard = want.Discard
	out.Replicas = want.Replicas
	out.Duplicates = max(have.Duplicates, want.Duplicates)
	changed := !slices.Equal(have.Subjects, out.Subjects) || have.Retention != out.Retention ||
		have.MaxMsgsPerSubject != out.MaxMsgsPerSubject || have.Discard != out.Discard ||
		max(have.Replicas, 1) != out.Replicas || out.Duplicates != have.Duplicates
	return out, changed
}

// streamCaptures reports whether subjects (a stream's) capture every feed
// subject "<prefix>.>".
func streamCaptures(subjects []string, prefix string) bool {
	all := subjectsFor(prefix)
	for _, s := range subjects {
		if server.SubjectMatchesFilter(all, s) {
			return true
		}
	}
	return false
}

// streamExclusive reports whether every subject a stream captures lies within
// "<prefix>.>", so that every stream sequence is a message for the source's
// consumer and a skipped sequence is a removed message.
func streamExclusive(subjects []string, prefix string) bool {
	if len(subjects) == 0 {
		return false // a mirror or a stream with sources: cannot tell
	}
	all := subjectsFor(prefix)
	for _, s := range subjects {
		if !server.SubjectMatchesFilter(s, all) {
			return false
		}
	}
	return true
}

// ensureStream looks the stream up (with lookup, which a new stream leader
// cuts short), creates it if it is missing and CreateStream is set, updates
// it to marquee's settings if ManageStream is set (both with ctx: a stream
// being created elects its first leader, which must not cancel the
// creation), and returns its info. It logs what it found once per stream
// (by creation time). Only the Run goroutine calls it.
func (s *JetStreamSource) ensureStream(ctx, lookup context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	info, err := s.streamInfo(lookup, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !s.cfg.CreateStream {
			s.setStreamMissing(true)
			return nil, fmt.Errorf("jetstream source: stream %s: %w (%sNATS_CREATE_STREAM is false)", s.cfg.Stream, ErrStreamMissing, EnvPrefix)
		}
		if info, err = s.createStream(ctx, js); err != nil {
			s.setStreamMissing(true)
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	s.setStreamMissing(false)
	if s.cfg.ManageStream {
		info = s.manageStream(ctx, js, info)
	}
	s.announce(info)
	return info, nil
}

func (s *JetStreamSource) streamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	stream, err := hedged(ctx, apiHedge, func(ctx context.Context) (jetstream.Stream, error) {
		return js.Stream(ctx, s.cfg.Stream)
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("jetstream source: stream %s info: %w", s.cfg.Stream, err)
	}
	return stream.CachedInfo(), nil
}

func (s *JetStreamSource) createStream(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	sc := s.cfg.streamConfig()
	cctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	stream, err := js.CreateStream(cctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Created meanwhile, by another replica or an operator: use it as
		// found.
		s.log.Info("jetstream stream created concurrently by someone else; using it")
		return s.streamInfo(ctx, js)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream source: create stream %s with %d replicas: %w", s.cfg.Stream, sc.Replicas, err)
	}
	info := stream.CachedInfo()
	s.log.Info("jetstream stream created", streamAttrs(info)...)
	s.announced = info.Created
	return info, nil
}

// manageStream updates the stream to marquee's settings if they differ. A
// failed update is logged, rate-limited, and the stream used as it is:
// serving it matters more than its settings.
func (s *JetStreamSource) manageStream(ctx context.Context, js jetstream.JetStream, info *jetstream.StreamInfo) *jetstream.StreamInfo {
	want, changed := s.cfg.managed(info.Config)
	if info.Config.Storage != jetstream.FileStorage {
		s.proc.warnLimited("manage_storage", "jetstream stream does not use file storage; marquee cannot change that", "stream", s.cfg.Stream, "storage", info.Config.Storage.String())
	}
	if !changed {
		return info
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	stream, err := js.UpdateStream(ctx, want)
	if err != nil {
		s.proc.warnLimited("manage", "jetstream stream update to marquee's settings failed; using it as it is",
			"err", err, "replicas", max(info.Config.Replicas, 1), "want_replicas", want.Replicas,
			"subjects", info.Config.Subjects, "want_subjects", want.Subjects)
		return info
	}
	updated := stream.CachedInfo()
	s.log.Info("jetstream stream updated to marquee's settings (NATS_MANAGE_STREAM)",
		append(streamAttrs(updated), "was_replicas", max(info.Config.Replicas, 1), "was_subjects", info.Config.Subjects,
			"was_max_msgs_per_subject", info.Config.MaxMsgsPerSubject, "was_retention", info.Config.Retention.String(),
			"was_discard", info.Config.Discard.String())...)
	return updated
}

// announce logs, once per stream, what marquee found and what follows from
// it: a stream that does not capture every feed subject loses messages; one
// that captures other subjects too limits gap detection.
func (s *JetStreamSource) announce(info *jetstream.StreamInfo) {
	if info.Created.Equal(s.announced) {
		return
	}
	s.announced = info.Created
	s.log.Info("jetstream stream found", append(streamAttrs(info), "managed", s.cfg.ManageStream)...)
	subjects := info.Config.Subjects
	switch {
	case len(subjects) == 0:
		s.log.Warn("jetstream stream has no subjects of its own (a mirror or sourced stream): cannot check that it holds every feed subject, and gaps are detected only from its first sequence",
			"want", subjectsFor(s.cfg.SubjectPrefix))
	case !streamCaptures(subjects, s.cfg.SubjectPrefix):
		s.log.Warn("jetstream stream does not capture every feed subject: messages on the others are not stored and never reach marquee",
			"subjects", subjects, "want", subjectsFor(s.cfg.SubjectPrefix))
	case !streamExclusive(subjects, s.cfg.SubjectPrefix):
		s.log.Warn("jetstream stream also captures subjects outside the feed prefix: gaps (removed messages) are detected only from its first sequence",
			"subjects", subjects, "want", subjectsFor(s.cfg.SubjectPrefix))
	}
}

func streamAttrs(info *jetstream.StreamInfo) []any {
	c := info.Config
	attrs := []any{
		"subjects", c.Subjects, "replicas", max(c.Replicas, 1), "storage", c.Storage.String(),
		"retention", c.Retention.String(), "max_msgs_per_subject", c.MaxMsgsPerSubject, "discard", c.Discard.String(),
		"max_msgs", c.MaxMsgs, "max_bytes", c.MaxBytes, "max_age", c.MaxAge,
		"created", info.Created, "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq, "msgs", info.State.Msgs,
	}
	if info.Cluster != nil {
		attrs = append(attrs, "leader", info.Cluster.Leader)
	}
	return attrs
}
