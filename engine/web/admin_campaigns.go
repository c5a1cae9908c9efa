package web

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/shoptrail/shoptrail/engine/campaign"
)

// The admin side of campaigns: the list, the editor (a page whose script,
// static/campaign.js, saves through the JSON routes below and publishes
// drafts to the live preview), and the report with a chart. Every route
// needs a signed-in admin; the listener's cross-origin protection covers
// the state-changing ones.

// campaignsPage is GET /campaigns.
func (s *Server) campaignsPage(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.campaigns.List(r.URL.Query().Get("archived") == "true")
	if err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "campaigns", s.page(r, map[string]any{"Campaigns": cs, "Archived": r.URL.Query().Get("archived") == "true"}))
}

// campaignEditor is GET /campaigns/new and GET /campaigns/{id}.
func (s *Server) campaignEditor(w http.ResponseWriter, r *http.Request) error {
	c := campaign.Campaign{Status: campaign.StatusDraft, Groups: []campaign.Group{{
		Name: "Step 1", Placement: campaign.Placement{Selector: "h1", Mode: campaign.ModeAfter}, Goal: campaign.GoalShown,
		Trigger:    &campaign.Trigger{Kind: campaign.TriggerImmediately},
		Variations: []campaign.Variation{{Name: "A", Weight: 100, HTML: "<div class=\"promo\">Free shipping today</div>"}},
	}}}
	if id := r.PathValue("id"); id != "" {
		var err error
		if c, err = s.campaigns.Get(id); err != nil {
			return campaignError(err)
		}
	}
	kinds := map[string][]string{}
	for _, k := range campaign.Kinds() {
		kinds[k] = campaign.Ops(k)
	}
	meta := map[string]any{"kinds": kinds, "shop": s.shopURL(r)}
	return s.render(w, http.StatusOK, "campaign", s.page(r, map[string]any{"Campaign": c, "Data": c, "Meta": meta}))
}

// shopURL is the page the preview opens by default: the first allowed
// origin, else the demo shop on the public listener.
func (s *Server) shopURL(r *http.Request) string {
	if o := s.live.Get().AllowedOrigins; len(o) > 0 {
		return strings.TrimSuffix(o[0], "/") + "/"
	}
	if s.cfg.Demo.Enabled {
		host := s.cfg.HTTP.Public
		if strings.HasPrefix(host, ":") {
			host = "127.0.0.1" + host
		}
		if s.publicURL != "" {
			return s.publicURL + "/demo/"
		}
		return "http://" + host + "/demo/"
	}
	return ""
}

// SetPublicURL tells the admin UI where the public listener is (the demo
// shop's address for the preview).
func (s *Server) SetPublicURL(u string) { s.publicURL = u }

// adminSaveCampaign is POST /campaigns/api (new) and PUT
// /campaigns/api/{id}: the same JSON and errors as the public API.
func (s *Server) adminSaveCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := decodeCampaign(w, r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if id := r.PathValue("id"); id != "" {
		c, err = s.campaigns.Update(id, c)
	} else {
		c, err = s.campaigns.Create(c)
		status = http.StatusCreated
	}
	if err != nil {
		return campaignError(err)
	}
	writeJSON(w, status, c)
	return nil
}

// adminCampaignStatus is POST /campaigns/api/{id}/status.
func (s *Server) adminCampaignStatus(w http.ResponseWriter, r *http.Request) error {
	return s.campaignStatus(w, r)
}

// previewToken is POST /campaigns/preview: a token for one draft's preview
// and the shop URL that opens it.
func (s *Server) previewToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		CampaignID string `json:"campaign_id"`
		URL        string `json:"url"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", `the body must be {"campaign_id":"...","url":"https://shop.example/"}`)
	}
	u, err := url.Parse(body.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("url", "the shop page to preview on must be an http(s) URL")
	}
	if body.CampaignID == "" {
		body.CampaignID = "new"
	}
	tok, err := s.preview.NewToken(body.CampaignID)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "too_many_previews", "", err.Error())
	}
	q := u.Query()
	q.Set("shoptrail_preview", tok)
	u.RawQuery = q.Encode()
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "url": u.String()})
	return nil
}

// publishDraft is POST /campaigns/preview/{token}: the editor's draft, as
// typed, to every shop tab previewing it.
func (s *Server) publishDraft(w http.ResponseWriter, r *http.Request) error {
	var d previewDraft
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, campaign.MaxBody))
	if err := dec.Decode(&d); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a draft: "+err.Error())
	}
	if err := campaign.PrepareDraft(&d.Campaign, d.Group, d.Variation); err != nil {
		return campaignError(err)
	}
	if err := s.preview.Publish(r.PathValue("token"), previewState{draft: d}); err != nil {
		return errorf(http.StatusNotFound, "invalid_token", "token", "the preview token is unknown or expired; open the preview again")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// bar is one bar of the report's chart.
type chartBar struct {
	Label string
	Value float64 // a rate, 0..1
	Width float64 // of 300 px
	Y     int
}

// campaignReportPage is GET /campaigns/{id}/report.
func (s *Server) campaignReportPage(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.campaigns.Report(r.PathValue("id"))
	if err != nil {
		return campaignError(err)
	}
	type chart struct {
		Name   string
		Bars   []chartBar
		Height int
	}
	var charts []chart
	for _, g := range rep.Groups {
		ch := chart{Name: g.Name}
		top := 0.0
		for _, v := range g.Variations {
			top = math.Max(top, math.Max(v.CTR, v.ConversionRate))
		}
		for _, v := range g.Variations {
			for _, m := range []struct {
				label string
				v     float64
			}{{v.Name + " CTR", v.CTR}, {v.Name + " conversion", v.ConversionRate}} {
				b := chartBar{Label: m.label, Value: m.v, Y: len(ch.Bars) * 22}
				if top > 0 {
					b.Width = math.Round(300 * m.v / top)
				}
				ch.Bars = append(ch.Bars, b)
			}
		}
		ch.Height = len(ch.Bars)*22 + 4
		charts = append(charts, ch)
	}
	return s.render(w, http.StatusOK, "campaign_report", s.page(r, map[string]any{"Report": rep, "Charts": charts}))
}
