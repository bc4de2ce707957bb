// Package demogen generates marquee's demo data: made-up prices and scores
// in the shapes the dashboard (origin/web) renders. It is a pure generator:
// no NATS, no clock, no goroutines. The caller passes the time to stamp into
// each message and publishes the messages however it likes: package feed's
// demo publisher over core NATS, cmd/feedsim through it, the browser tests
// through JetStream.
//
// Two feeds, 28 keys in all:
//
//   - "prices.<SYMBOL>": 20 stocks on a random walk, body [Price];
//   - "scores.<league>.<away>-<home>": 8 games in the NBA, NHL, EPL and NFL
//     whose clocks run, periods advance and scores grow, body [Score]; a game
//     that went final is deleted (nil body) a few updates later and a new
//     game takes its place in the same message batch.
//
// The generator is deterministic: the same seed and the same sequence of
// calls give the same subjects and bodies, except the "time" field, which
// is the time the caller passed.
//
// Concurrency: a [Generator] is not safe for concurrent use; one goroutine
// calls it at a time.
package demogen
