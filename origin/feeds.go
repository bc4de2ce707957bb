package origin

import (
	"net/http"

	"marquee/cdn"
	"marquee/wire"
)

func (s *Server) handleFeeds(w http.ResponseWriter, r *http.Request) {
	now := s.hub.Now()
	g := s.hub.Grid()
	names := s.hub.Feeds()
	out := wire.FeedList{Feeds: make([]wire.FeedRef, 0, len(names)), ServerTime: now.UnixMilli()}
	prefix := s.hub.Config().URLPrefix
	for _, n := range names {
		if s.tokens.Protected(n) {
			// No path that would 403: the descriptor's holds a token.
			out.Feeds = append(out.Feeds, wire.FeedRef{Feed: n, Protected: true})
			continue
		}
		out.Feeds = append(out.Feeds, wire.FeedRef{Feed: n, URL: prefix + "/" + n})
	}
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(g.Index(now)))
	s.writeJSON(w, out)
}

func (s *Server) handleDescriptor(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	now := s.hub.Now()
	g := s.hub.Grid()
	cfg := s.hub.Config()
	n := g.Index(now)
	part := g.PartIndex(n, now)
	// A log this origin opened mid-segment (it just started, or the feed is
	// new) refuses the parts up to and including the one open at opening
	// (segmenter.Log.FirstPart): point joiners at its first complete part
	// (held until it finishes) instead of one they would be refused; when
	// it opened in its last part, at Parts: none of this segment, join at
	// the next one's first part.
	if l, ok := f.Segment(n); ok {
		part = max(part, l.FirstPart())
	}
	// On a tokened route every path carries the request's token.
	base := s.feedBase(r, f.Name())
	d := wire.Descriptor{
		Feed:          f.Name(),
		SegmentLength: cfg.SegmentLength.Seconds(),
		PartLength:    cfg.PartLength.Seconds(),
		Keepalive:     cfg.Keepalive.Seconds(),
		Segment:       n,
		URL:           segmentPath(base, n),
		SegmentStart:  g.Start(n).UnixMilli(),
		SegmentEnd:    g.End(n).UnixMilli(),
		NextURL:       segmentPath(base, n+1),
		DirectURL:     base + "/events",
		SnapshotURL:   base + "/snapshot",
		ServerTime:    now.UnixMilli(),
		Seq:           f.Seq(),
		Keys:          f.Keys(),
		Modes:         []string{wire.ModeStream, wire.ModeParts, wire.ModeDirect},
		Mode:          s.cfg.ClientMode,
		Parts:         cfg.Parts(),
		Part:          part,
		PartURL:       base + "/segments/{n}/parts/{k}",
		UptoURL:       base + "/segments/{n}/upto/{k}",
	}
	if i := cfg.Conflate.For(f.Name()); i > 0 {
		d.Conflate = i.Seconds()
	}
	if tok, ok := s.requestToken(r); ok {
		d.Protected = true
		d.TokenExpires = tok.Expires.UnixMilli()
	}
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(n))
	s.writeJSON(w, d)
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	now := s.hub.Now()
	g := s.hub.Grid()
	body, _ := f.Snapshot(now)
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(g.Index(now)))
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}
