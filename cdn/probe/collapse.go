package probe

import (
	"crypto/sha256"
	"fmt"
	"net/http"

	"marquee/cdn"
)

// Collapse is how the requests of many viewers for one URL (a segment, a
// part, an upto range) were answered: how many distinct origin responses
// they shared and whether they all got the same bytes. Stream and parts
// probes judge collapsing the same way, with collapseOf and collapseJudge.
type Collapse struct {
	Viewers     int
	Responses   int     // distinct origin responses (Marquee-Response-Id)
	Ratio       float64 // viewers per origin response
	Identical   bool    // every complete body had the same bytes
	Complete    int     // bodies read to their proper end
	Bytes       int     // length of the (most common) complete body
	MissingID   int     // responses without Marquee-Response-Id
	Errors      int
	TopResponse string // the response id most viewers shared
}

// response is what judging collapse needs of one observed response.
type response struct {
	status   int
	id       string // Marquee-Response-Id
	variant  string
	complete bool
	sum      [sha256.Size]byte
	bytes    int
}

// collapseOf sums up the responses to one URL.
func collapseOf(rs []response) Collapse {
	c := Collapse{Viewers: len(rs), Identical: true}
	ids := map[string]int{}
	sums := map[[sha256.Size]byte]int{}
	for _, r := range rs {
		if r.status != http.StatusOK {
			c.Errors++
			continue
		}
		if r.id == "" {
			c.MissingID++
		} else {
			ids[r.id]++
		}
		if !r.complete {
			c.Errors++
			continue
		}
		c.Complete++
		sums[r.sum]++
		if len(sums) == 1 {
			c.Bytes = r.bytes
		}
	}
	c.Identical = len(sums) <= 1
	c.Responses = len(ids)
	if c.Responses > 0 {
		c.Ratio = float64(c.Viewers-c.Errors-c.MissingID) / float64(c.Responses)
	}
	best := 0
	for id, n := range ids {
		if n > best || (n == best && id < c.TopResponse) {
			best, c.TopResponse = n, id
		}
	}
	return c
}

// collapseJudge accumulates the groups of one probe and names what is
// wrong with their collapsing.
type collapseJudge struct {
	minRatio float64           // at least this many viewers per origin response
	unit     string            // "segment" or "part"
	nameAll  bool              // name the worst group in "no collapse" too
	variants map[string][2]int // per request variant: [shared the top response, total]

	judged, missingID, viewers int
	worst                      *Collapse
	worstWhere                 string
	problems                   []string
}

// add judges one group. name is how a message names it ("segment 7",
// "parts/1 of segment 7"), prep how a message leads to the name.
func (j *collapseJudge) add(c Collapse, rs []response, prep, name string) {
	j.missingID += c.MissingID
	j.viewers += c.Viewers
	for _, r := range rs {
		if r.status != http.StatusOK {
			continue
		}
		v := j.variants[r.variant]
		v[1]++
		if r.id != "" && r.id == c.TopResponse {
			v[0]++
		}
		j.variants[r.variant] = v
	}
	if valid := c.Viewers - c.Errors - c.MissingID; valid >= 2 && c.Responses > 0 {
		j.judged++
		// At most one origin response per minRatio viewers, and always one.
		allowed := max(1, int(float64(valid)/j.minRatio))
		if c.Responses > allowed && (j.worst == nil || c.Viewers > j.worst.Viewers) {
			w := c
			j.worst, j.worstWhere = &w, prep+" "+name
		}
	}
	if !c.Identical {
		j.problems = append(j.problems, fmt.Sprintf("bytes differ: viewers of %s received different bodies", name))
	}
}

// verdict returns the problems found, the collapse ones after those of
// the groups.
func (j *collapseJudge) verdict() []string {
	p := j.problems
	switch {
	case j.viewers == 0:
		p = append(p, "no viewer received anything")
	case j.missingID > 0 && j.missingID*2 > j.viewers:
		p = append(p, fmt.Sprintf("cannot tell collapsing: %d responses carry no %s header (does the edge strip it?)", j.missingID, cdn.HeaderResponseID))
	case j.judged == 0:
		p = append(p, fmt.Sprintf("cannot tell collapsing: no %s had two viewers", j.unit))
	case j.worst != nil:
		w := j.worst
		if w.Responses == w.Viewers {
			where := ""
			if j.nameAll {
				where = " " + j.worstWhere
			}
			p = append(p, fmt.Sprintf("no collapse: %d viewers saw %d distinct origin responses%s", w.Viewers, w.Responses, where))
		} else {
			p = append(p, fmt.Sprintf("weak collapse: %d viewers saw %d distinct origin responses %s (want at least %.0f viewers per response)",
				w.Viewers, w.Responses, j.worstWhere, j.minRatio))
		}
	}
	return p
}

func (c Collapse) responses() int { return c.Responses }

// maxResponses returns the most origin responses any group had.
func maxResponses[T interface{ responses() int }](groups []T) int {
	m := 0
	for _, g := range groups {
		m = max(m, g.responses())
	}
	return m
}
