package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/live"
	"github.com/shoptrail/shoptrail/engine/model"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// campaignError maps the campaign service's errors to answers.
func campaignError(err error) error {
	var fe *campaign.FieldError
	switch {
	case errors.Is(err, campaign.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such campaign")
	case errors.As(err, &fe):
		return invalid(fe.Path, fe.Message)
	}
	return err
}

// decodeCampaign reads a campaign's JSON: unknown fields are refused (a
// misspelt "placment" must not be dropped silently), and a type mismatch
// names its field.
func decodeCampaign(w http.ResponseWriter, r *http.Request) (campaign.Campaign, error) {
	var c campaign.Campaign
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, campaign.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var tooBig *http.MaxBytesError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return c, err
		case errors.As(err, &typ):
			return c, invalid(typ.Field, "the field "+typ.Field+" must be a "+typ.Type.String()+", not a JSON "+typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return c, invalid(f, "unknown field "+strconv.Quote(f))
		}
		return c, errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a campaign as JSON: "+err.Error())
	}
	if dec.More() {
		return c, errorf(http.StatusBadRequest, "invalid_json", "body", "the body must hold one JSON object")
	}
	return c, nil
}

// createCampaign is POST /api/v1/campaigns.
func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := decodeCampaign(w, r)
	if err != nil {
		return err
	}
	c, err = s.campaigns.Create(c)
	if err != nil {
		return campaignError(err)
	}
	w.Header().Set("Location", "/api/v1/campaigns/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// listCampaigns is GET /api/v1/campaigns (?archived=true includes archived).
func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) error {
	archived := false
	switch v := r.URL.Query().Get("archived"); v {
	case "", "false":
	case "true":
		archived = true
	default:
		return invalid("archived", "archived is true or false")
	}
	cs, err := s.campaigns.List(archived)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": cs})
	return nil
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaigns.Get(r.PathValue("id"))
	if err != nil {
		return campaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) putCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := decodeCampaign(w, r)
	if err != nil {
		return err
	}
	c, err = s.campaigns.Update(r.PathValue("id"), c)
	if err != nil {
		return campaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteCampaign(w http.ResponseWriter, r *http.Request) error {
	if err := s.campaigns.Delete(r.PathValue("id")); err != nil {
		return campaignError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// campaignStatus is POST /api/v1/campaigns/{id}/status {"status":"active"}.
func (s *Server) campaignStatus(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Status string `json:"status"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", `the body must be {"status":"active"} (or paused, archived): `+err.Error())
	}
	c, err := s.campaigns.SetStatus(r.PathValue("id"), body.Status)
	if err != nil {
		return campaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// campaignReport is GET /api/v1/campaigns/{id}/report.
func (s *Server) campaignReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.campaigns.Report(r.PathValue("id"))
	if err != nil {
		return campaignError(err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// Limits of the decision request's parameters (decoded): the page and
// referrer URLs as events take them, the browser's counts and goals (k, g)
// for a few hundred steps, the rest short.
const (
	maxDecideURL   = 8192
	maxDecideState = 16 << 10
	maxDecideParam = 512
)

// decide is GET /c/decide, the campaign decision for one page view, which
// the stub fetches from the head of the page (a fetch delays neither the
// page nor its load event). The answer is JSON: the CSS that hides the
// active campaigns' targets on the next page (css), what to show (show),
// the preview (preview), whether the renderer is needed (n) and its
// content-hashed URL (r). Any failure lets the stub show the page at once.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if s.campaigns == nil || !s.cfg.Campaigns.Enabled {
		return errorf(http.StatusNotFound, "not_found", "", "onsite campaigns are turned off ([campaigns] enabled)")
	}
	q := r.URL.Query()
	for k, v := range q {
		limit := maxDecideParam
		switch k {
		case "u", "r":
			limit = maxDecideURL
		case "k", "g":
			limit = maxDecideState
		}
		if len(v) != 1 {
			return invalid(k, "the parameter "+k+" is repeated")
		}
		if len(v[0]) > limit {
			return invalid(k, "the parameter "+k+" is longer than "+strconv.Itoa(limit)+" bytes")
		}
	}
	req := campaign.Request{AnonymousID: q.Get("a"), SessionID: q.Get("s"), URL: q.Get("u"), Referrer: q.Get("r"),
		UserAgent: r.UserAgent(), PageType: q.Get("pt"), ProductID: q.Get("pid"), Now: s.now()}
	if k := q.Get("k"); k != "" {
		var cs struct {
			S string         `json:"s"`
			N map[string]int `json:"n"`
		}
		if json.Unmarshal([]byte(k), &cs) == nil && cs.S == req.SessionID {
			req.SessionCounts = cs.N
		}
	}
	if g := q.Get("g"); g != "" {
		req.Goals = strings.Split(g, ",")
	}
	out := decision{Show: []campaign.Shown{}, Renderer: rendererAsset().Path}
	if tok := q.Get("p"); tok != "" && s.preview != nil {
		if _, ok := s.preview.Campaign(tok); ok {
			out.Preview = &previewInfo{Token: tok, ProductID: req.ProductID}
		}
	}
	if out.Preview == nil {
		show := shownBufs.Get().(*[]campaign.Shown)
		defer func() {
			clear(*show) // keeps no campaign's content alive
			shownBufs.Put(show)
		}()
		d, err := s.campaigns.DecideAppend(req, *show)
		*show = d.Show
		if err != nil {
			return err
		}
		out.Show, out.CSS = d.Show, d.CSS
	} else {
		out.CSS = campaign.HideCSS(s.campaigns.Hide())
	}
	out.Need = len(out.Show) > 0 || out.Preview != nil
	buf := decisionBufs.Get().(*[]byte)
	defer decisionBufs.Put(buf)
	var err error
	if *buf, err = out.appendJSON((*buf)[:0]); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(http.StatusOK)
	w.Write(*buf) // an error here means the client left
	if cap(*buf) > 64<<10 {
		*buf = make([]byte, 0, 8<<10) // a rare big answer is not kept
	}
	return nil
}

// shownBufs are the buffers decisions are made in.
var shownBufs = sync.Pool{New: func() any { s := make([]campaign.Shown, 0, 16); return &s }}

// decisionBufs are the buffers decisions are encoded in.
var decisionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// decision is the answer of /c/decide.
type decision struct {
	CSS      string           `json:"css"`
	Show     []campaign.Shown `json:"show"`
	Preview  *previewInfo     `json:"preview,omitempty"`
	Need     bool             `json:"n"`
	Renderer string           `json:"r"`
}

// appendJSON appends d's JSON and a newline, the same as a json.Encoder
// writes, without reflection: every page view of the shop asks for one.
func (d *decision) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"css":`...)
	b = model.AppendJSONString(b, d.CSS)
	b = append(b, `,"show":`...)
	if d.Show == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Show {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = d.Show[i].AppendJSON(b); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if d.Preview != nil {
		b = append(b, `,"preview":{"token":`...)
		b = model.AppendJSONString(b, d.Preview.Token)
		if d.Preview.ProductID != "" {
			b = append(b, `,"pid":`...)
			b = model.AppendJSONString(b, d.Preview.ProductID)
		}
		b = append(b, '}')
	}
	b = append(b, `,"n":`...)
	b = strconv.AppendBool(b, d.Need)
	b = append(b, `,"r":`...)
	b = model.AppendJSONString(b, d.Renderer)
	return append(b, "}\n"...), nil
}

// rendererAsset is the campaign renderer, served at a content-hashed URL,
// compressed once.
var rendererAsset = sync.OnceValue(func() *tracker.Asset {
	return tracker.NewAsset("/c/render", ".js", "text/javascript; charset=utf-8", []byte(campaign.RendererJS))
})

// serveRenderer is GET /c/{file}: the renderer.
func (s *Server) serveRenderer(w http.ResponseWriter, r *http.Request) error {
	as := rendererAsset()
	if r.URL.Path != as.Path {
		return notFound(w, r)
	}
	return serveAssetFile(w, r, as)
}

type previewInfo struct {
	Token     string `json:"token"`
	ProductID string `json:"pid,omitempty"`
}

// Preview over WebSocket ------------------------------------------------

// previewDraft is what the editor sends: the draft, which group and
// variation to show, and when the edit was made (for the latency figure).
type previewDraft struct {
	Campaign  campaign.Campaign `json:"campaign"`
	Group     int               `json:"group"`
	Variation int               `json:"variation"`
	T         int64             `json:"t,omitempty"`
}

// previewState is what the hub holds for a token: the draft, sanitised.
type previewState struct {
	draft previewDraft
}

// Preview limits of one WebSocket.
const (
	wsReadLimit  = 4 << 10 // a tab sends nothing but pongs and closes
	wsWriteWait  = 5 * time.Second
	wsPongWait   = 60 * time.Second
	wsPingPeriod = 25 * time.Second
)

// previewSocket is GET /c/preview?token=...: a shop tab in preview mode
// listens here for the drafts the editor publishes. Origin must be the
// shop's (an allowed origin) or this listener's own; the token is scoped to
// one draft, read-only, and short-lived.
func (s *Server) previewSocket(w http.ResponseWriter, r *http.Request) error {
	if s.preview == nil {
		return errorf(http.StatusNotFound, "not_found", "", "no preview here")
	}
	tok := r.URL.Query().Get("token")
	if _, ok := s.preview.Campaign(tok); !ok {
		return errorf(http.StatusForbidden, "invalid_token", "token", "the preview token is unknown or expired; open the preview from the editor again")
	}
	up := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 8192, HandshakeTimeout: 5 * time.Second,
		CheckOrigin: func(r *http.Request) bool {
			origin := r.Header.Get("Origin")
			if origin == "" {
				return false
			}
			same := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://") == r.Host
			return same || s.live.OriginAllowed(origin)
		},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeJSON(w, status, errorBody{errorf(status, "websocket", "Origin", reason.Error()+" (the preview accepts the shop's allowed origins)")})
		},
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader answered
	}
	sub, err := s.preview.Subscribe(tok)
	if err != nil {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, err.Error()), time.Now().Add(wsWriteWait))
		conn.Close()
		return nil
	}
	pid := r.URL.Query().Get("pid")
	if len(pid) > 200 {
		pid = ""
	}
	go s.previewPump(conn, tok, sub, pid)
	return nil
}

// previewPump writes drafts to one tab and reads its pongs; it ends when
// the tab goes, the token expires, or Shoptrail stops.
func (s *Server) previewPump(conn *websocket.Conn, tok string, sub *live.Sub, pid string) {
	defer s.preview.Unsubscribe(tok, sub)
	defer conn.Close()
	conn.SetReadLimit(wsReadLimit)
	conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	closeWith := func(code int, msg string) {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(wsWriteWait))
	}
	for {
		select {
		case <-gone:
			return
		case <-s.liveDone:
			closeWith(websocket.CloseGoingAway, "shoptrail is stopping")
			return
		case v, ok := <-sub.C:
			if !ok {
				closeWith(websocket.ClosePolicyViolation, "the preview token expired")
				return
			}
			st, ok := v.(previewState)
			if !ok {
				continue
			}
			shown, err := s.campaigns.Preview(st.draft.Campaign, st.draft.Group, st.draft.Variation, pid)
			msg := map[string]any{"show": []campaign.Shown{}, "t": st.draft.T}
			if err == nil {
				msg["show"] = []campaign.Shown{shown}
			}
			conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := conn.WriteJSON(msg); err != nil {
				return
			}
		case <-ping.C:
			if _, ok := s.preview.Expires(tok); !ok {
				closeWith(websocket.ClosePolicyViolation, "the preview token expired")
				return
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				return
			}
		}
	}
}
