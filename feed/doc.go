// Package feed turns NATS messages into segmenter updates.
//
// It owns everything that touches NATS in marquee:
//
//   - validation of incoming messages ([Parse]): subject shape
//     "<prefix>.<feed>.<key...>", size, key syntax, JSON-object bodies
//     (compacted to one line), empty body = delete;
//   - two [Source] implementations behind one interface: [JetStreamSource]
//     (its own pull consumers, which rebuild the state from the last message
//     per subject at start-up, then follow live, with event ids = stream
//     sequences; it notices messages removed before it read them and a
//     recreated stream and then reloads the state through Sink.Reload, and
//     a watchdog reports a stalled consumer or a missing stream in
//     [Status]) and [CoreSource] (a plain subscription with process-local
//     ids);
//   - the JetStream stream itself: created when missing with the configured
//     replicas, never changed unless [Config.ManageStream] says so;
//   - the NATS connection ([Connect]) and its metrics ([Metrics]);
//   - an embedded nats-server with JetStream ([StartEmbedded]) used when no
//     NATS URL is configured;
//   - a demo publisher of prices and scores ([Demo]) that publishes what
//     the pure generator in [marquee/feed/demogen] makes.
//
// Bad messages are counted by [Reason] in a metric, logged at a limited rate
// and dropped; they never stop a source.
//
// Concurrency: a Source's Run consumes on the calling goroutine and calls
// Sink.Apply, Sink.Reload and Sink.Loaded from that goroutine only, so a Sink
// sees updates one at a time and in stream order. The JetStream source's
// watchdog is a goroutine that Run starts and waits for; it only reads the
// stream's state and may end the current consumer so that Run replaces it.
// Run may be called once; it returns when its context is done (nil) or when
// the NATS connection was closed. Status is safe to call
// from any goroutine at any time. Demo.Run likewise publishes from the calling
// goroutine only. Metrics are safe for concurrent use.
//
// The package never reads the environment: [Config] carries env tags that
// cmd/marquee parses with the prefix [EnvPrefix].
package feed
