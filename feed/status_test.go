package feed

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStatusReason(t *testing.T) {
	ok := Status{Connected: true, Loaded: true}
	tests := []struct {
		name string
		st   Status
		want string // prefix; "" means ready
	}{
		{"ready", ok, ""},
		{"disconnected wins", Status{Loaded: true, Stalled: true, StreamMissing: true}, "nats disconnected"},
		{"stream missing", Status{Connected: true, Loaded: true, StreamMissing: true, Err: "x: jetstream stream missing"}, "jetstream stream missing: x: jetstream stream missing"},
		{"reloading", Status{Connected: true, Reloading: true, ReloadReason: ReloadGap}, "reloading state (gap)"},
		{"reloading recreated", Status{Connected: true, Reloading: true, ReloadReason: ReloadRecreated}, "reloading state (recreated)"},
		{"loading", Status{Connected: true}, "loading state"},
		{"loading with error", Status{Connected: true, Err: "boom"}, "loading state: boom"},
		{"stalled", Status{Connected: true, Loaded: true, Stalled: true, LastProgress: time.Now().Add(-7 * time.Second)}, "feed stalled: no progress for 7"},
		{"stalled with error", Status{Connected: true, Loaded: true, Stalled: true, Err: "timeout"}, "feed stalled: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.st.Reason()
			if tt.want == "" {
				if got != "" || !tt.st.Ready() {
					t.Fatalf("Reason() = %q, Ready() = %v; want ready", got, tt.st.Ready())
				}
				return
			}
			if !strings.HasPrefix(got, tt.want) || tt.st.Ready() {
				t.Fatalf("Reason() = %q (Ready %v), want prefix %q and not ready", got, tt.st.Ready(), tt.want)
			}
		})
	}
}

func TestStreamSubjects(t *testing.T) {
	tests := []struct {
		subjects            []string
		captures, exclusive bool
	}{
		{[]string{"feeds.>"}, true, true},
		{[]string{">"}, true, false},
		{[]string{"*.>"}, true, false},
		{[]string{"feeds.prices.>", "feeds.scores.>"}, false, true},
		{[]string{"feeds.*"}, false, true},
		{[]string{"feeds.>", "audit.>"}, true, false},
		{[]string{"other.>"}, false, false},
		{[]string{"feeds"}, false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		if got := streamCaptures(tt.subjects, "feeds"); got != tt.captures {
			t.Errorf("streamCaptures(%q) = %v, want %v", tt.subjects, got, tt.captures)
		}
		if got := streamExclusive(tt.subjects, "feeds"); got != tt.exclusive {
			t.Errorf("streamExclusive(%q) = %v, want %v", tt.subjects, got, tt.exclusive)
		}
	}
	if !streamCaptures([]string{"acme.*.>"}, "acme.feeds") || !streamExclusive([]string{"acme.feeds.x.>"}, "acme.feeds") {
		t.Error("multi-token prefix")
	}
}

func TestConfigStreamSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StreamReplicas = 3
	sc := cfg.streamConfig()
	if sc.Replicas != 3 || sc.MaxMsgsPerSubject != 16 || sc.Discard != jetstream.DiscardOld ||
		sc.Retention != jetstream.LimitsPolicy || sc.Storage != jetstream.FileStorage || sc.Subjects[0] != "feeds.>" {
		t.Fatalf("streamConfig() = %+v", sc)
	}
	have := jetstream.StreamConfig{
		Name: "FEEDS", Subjects: []string{"feeds.>"}, Replicas: 1, MaxMsgsPerSubject: 5, MaxAge: time.Hour,
		Storage: jetstream.MemoryStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
	}
	want, changed := cfg.managed(have)
	if !changed || want.Replicas != 3 || want.MaxMsgsPerSubject != 16 || want.MaxAge != time.Hour || want.Storage != jetstream.MemoryStorage {
		t.Fatalf("managed(%+v) = %+v, %v", have, want, changed)
	}
	if _, changed := cfg.managed(want); changed {
		t.Error("managed config reported as changed again")
	}
	have.Replicas, have.MaxMsgsPerSubject = 0, 16 // 0 is what an R1 stream may report
	cfg.StreamReplicas = 1
	if _, changed := cfg.managed(have); changed {
		t.Error("replicas 0 and 1 differ")
	}
}

func TestCheckEvery(t *testing.T) {
	cfg := DefaultConfig()
	if got := cfg.checkEvery(); got != time.Second {
		t.Errorf("checkEvery with default stall timeout = %v", got)
	}
	cfg.StallTimeout = time.Second
	if got := cfg.checkEvery(); got != 250*time.Millisecond {
		t.Errorf("checkEvery with 1s stall timeout = %v", got)
	}
}
