package origin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"marquee/cdn"
)

// The browser client and the public dashboard: static files embedded in the
// binary, no build step. web/client.js is served as GET /v1/client.js,
// web/index.html as GET /, every other file of web/ as GET /assets/{file}.
//
//go:embed web
var webFiles embed.FS

// contentSecurityPolicy is the dashboard's CSP: scripts, styles and images
// only from this origin, no inline code (Trusted Types enforced), but
// connections anywhere so that ?origin= can point at another marquee.
// Framing is allowed: a public scoreboard may be embedded.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src *; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
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
		sum := sha256.Sum256(body)
		out[e.Name()] = &asset{name: e.Name(), body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// serveAsset answers with a, public for a short while, revalidated by
// ETag (http.ServeContent answers If-None-Match with 304, and HEAD).
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	s.policy.Set(h, cdn.Static, time.Time{}, time.Time{})
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// handleDashboard serves the public dashboard. Its query (?origin=,
// ?mode=) is read by the page's script; the HTML is the same for all.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	s.serveAsset(w, r, assets["index.html"])
}

// handleClient serves the browser client, an ES module that any origin may
// import (CORS without credentials).
func (s *Server) handleClient(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, assets["client.js"])
}

// handleAsset serves the dashboard's other files. The page and the client
// have their own routes and are not assets.
func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	a, ok := assets[name]
	if !ok || name == "index.html" || name == "client.js" {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "no such asset"})
		return
	}
	s.serveAsset(w, r, a)
}
