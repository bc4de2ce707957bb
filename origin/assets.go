package origin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"marquee/cdn"
	"marquee/openapi"
)

// The browser client and the public dashboard: static files embedded in the
// binary, no build step. web/client.js is served as GET /v1/client.js,
// web/board.js (the embeddable <marquee-board> element) as GET
// /v1/board.js, web/index.html as GET /, every other file of web/ as GET
// /assets/{file}.
//
//go:embed web
var webFiles embed.FS

// contentSecurityPolicy returns the dashboard's CSP: scripts, styles and
// images only from this origin, no inline code (Trusted Types enforced),
// connections only to this origin and to the allowed other origins
// (Config.DashboardOrigins) that ?origin= may name. Framing is allowed: a
// public scoreboard may be embedded.
func contentSecurityPolicy(origins []string) string {
	connect := strings.Join(append([]string{"'self'"}, origins...), " ")
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + connect + "; object-src 'none'; base-uri 'none'; form-action 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'"
}

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
	csp   string // Content-Security-Policy, when set
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// assets holds every file of web/ by name, read once at start-up.
var assets = loadAssets(webFiles)

func loadAssets(fsys fs.FS) map[string]*asset {
	out := make(map[string]*asset)
	entries, err := fs.ReadDir(fsys, "web")
	if err != nil {
		panic("origin: embedded web files: " + err.Error())
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ctype, ok := contentTypes[path.Ext(e.Name())]
		if !ok {
			panic("origin: embedded web file with no content type: " + e.Name())
		}
		body, err := fs.ReadFile(fsys, "web/"+e.Name())
		if err != nil {
			panic("origin: embedded web files: " + err.Error())
		}
		out[e.Name()] = newAsset(e.Name(), body, ctype)
	}
	return out
}

func newAsset(name string, body []byte, ctype string) *asset {
	sum := sha256.Sum256(body)
	return &asset{name: name, body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// dashboardPage returns web/index.html with the other origins the page may
// show (Config.DashboardOrigins, checked by Validate) in its data-origins
// attribute, read by dashboard.js, and the matching CSP. The page is the
// same for every viewer of one deployment.
func dashboardPage(origins []string) *asset {
	src := assets["index.html"]
	body := src.body
	if len(origins) > 0 {
		const tag = `<html lang="en">`
		if !bytes.Contains(body, []byte(tag)) {
			panic("origin: web/index.html has no " + tag)
		}
		attr := `<html lang="en" data-origins="` + html.EscapeString(strings.Join(origins, " ")) + `">`
		body = bytes.Replace(body, []byte(tag), []byte(attr), 1)
	}
	a := newAsset(src.name, body, src.ctype)
	a.csp = contentSecurityPolicy(origins)
	return a
}

// maxRanges is the number of byte ranges an asset request may ask for: a
// request for more is answered whole (200), as RFC 9110 allows, so that a
// response is never larger than the file (http.ServeContent would send
// every range, overlapping or not, in one multipart body).
const maxRanges = 1

// serveAsset answers with a, public for a short while, revalidated by
// ETag (http.ServeContent answers If-None-Match with 304, HEAD, and a
// single byte range).
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	s.policy.Set(h, cdn.Static, time.Time{}, time.Time{})
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	if a.csp != "" {
		h.Set("Content-Security-Policy", a.csp)
	}
	if rg := r.Header.Values("Range"); len(rg) > 1 || (len(rg) == 1 && strings.Count(rg[0], ",") >= maxRanges) {
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// handleDashboard serves the public dashboard. Its query (?origin=,
// ?mode=) is read by the page's script; the HTML is the same for all.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.serveAsset(w, r, s.page)
}

// handleClient serves the browser client, an ES module that any origin may
// import (CORS without credentials).
func (s *Server) handleClient(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, assets["client.js"])
}

// handleBoard serves the embeddable board, the <marquee-board> custom
// element: an ES module that imports the client next to it, for any origin
// (CORS without credentials).
func (s *Server) handleBoard(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, assets["board.js"])
}

// openAPIAsset is the OpenAPI description of the public and ingest APIs.
var openAPIAsset = newAsset("openapi.json", openapi.JSON(), "application/json")

// handleOpenAPI serves the OpenAPI description (package openapi), public
// for a short while like the client.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, openAPIAsset)
}

// handleAsset serves the dashboard's other files. The page, the client and
// the board have their own routes and are not assets.
func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	a, ok := assets[name]
	if !ok || name == "index.html" || name == "client.js" || name == "board.js" {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "no such asset"})
		return
	}
	s.serveAsset(w, r, a)
}
