package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// The admin UI's segments: a list with live counts, a rule editor with a
// live preview (segments.js), the members, a CSV export.

// eventTypes are offered by the editor (any other name is a custom event).
var eventTypes = []string{model.PageView, model.ProductView, model.CategoryView, model.Search, model.AddToCart,
	model.RemoveFromCart, model.Checkout, model.Order, model.Subscribe, model.Unsubscribe, model.Login,
	model.VisitFromReferrer, "user_update", "email_open", "email_click"}

// segmentsPage is GET /segments.
func (s *Server) segmentsPage(w http.ResponseWriter, r *http.Request) error {
	list, err := s.segs.List()
	if err != nil {
		return err
	}
	data := map[string]any{"Segments": list, "Presets": segment.Presets}
	if r.URL.Query().Has("deleted") {
		data["Message"] = "The segment was deleted."
	}
	return s.render(w, http.StatusOK, "segments", s.page(r, data))
}

// segmentEditor renders the editor with a rule (and the error that kept it
// from being saved).
func (s *Server) segmentEditor(w http.ResponseWriter, r *http.Request, status int, id, name, rule string, fail error) error {
	data := map[string]any{"ID": id, "Name": name, "Rule": rule, "EventTypes": eventTypes}
	var fe *model.FieldError
	switch {
	case fail == nil:
	case errors.As(fail, &fe):
		data["Error"] = &Error{Field: fe.Field, Message: fe.Message}
	case errors.Is(fail, segment.ErrTooMany):
		data["Error"] = &Error{Message: fail.Error()}
	default:
		return fail
	}
	return s.render(w, status, "segment_edit", s.page(r, data))
}

// newSegmentPage is GET /segments/new, from a preset or empty.
func (s *Server) newSegmentPage(w http.ResponseWriter, r *http.Request) error {
	rule := `{"name":"","match":"all","conditions":[{"event":"page_view","count":{"op":"gte","value":1},"within":"720h"}]}`
	for _, p := range segment.Presets {
		if p.Key == r.URL.Query().Get("preset") {
			rule = p.Rule
		}
	}
	return s.segmentEditor(w, r, http.StatusOK, "", "", indent(rule), nil)
}

func indent(rule string) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(rule), "", " ") != nil {
		return rule
	}
	return buf.String()
}

// createSegmentForm is POST /segments.
func (s *Server) createSegmentForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxSegmentBody)
	rule := r.PostFormValue("rule")
	v, err := s.segs.Create([]byte(rule))
	if err != nil {
		return s.segmentEditor(w, r, http.StatusBadRequest, "", "", rule, err)
	}
	http.Redirect(w, r, "/segments/"+v.ID, http.StatusSeeOther)
	return nil
}

// segmentPage is GET /segments/{id}: the count, the build, the members.
func (s *Server) segmentPage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	v, err := s.segs.Get(id)
	if err != nil {
		return segmentError(err)
	}
	ms, next, err := s.segs.Members(id, r.URL.Query().Get("after"), 100, false)
	if err != nil {
		return segmentError(err)
	}
	rule, _ := json.MarshalIndent(map[string]any{"name": v.Name, "match": v.Match, "conditions": v.Conditions}, "", " ")
	return s.render(w, http.StatusOK, "segment", s.page(r, map[string]any{"Segment": v, "Members": ms, "Next": next, "Rule": string(rule)}))
}

// editSegmentPage is GET /segments/{id}/edit.
func (s *Server) editSegmentPage(w http.ResponseWriter, r *http.Request) error {
	v, err := s.segs.Get(r.PathValue("id"))
	if err != nil {
		return segmentError(err)
	}
	rule, _ := json.MarshalIndent(map[string]any{"name": v.Name, "match": v.Match, "conditions": v.Conditions}, "", " ")
	return s.segmentEditor(w, r, http.StatusOK, v.ID, v.Name, string(rule), nil)
}

// updateSegmentForm is POST /segments/{id}.
func (s *Server) updateSegmentForm(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	r.Body = http.MaxBytesReader(w, r.Body, maxSegmentBody)
	rule := r.PostFormValue("rule")
	v, err := s.segs.Update(id, []byte(rule))
	if errors.Is(err, segment.ErrNotFound) {
		return segmentError(err)
	}
	if err != nil {
		old, _ := s.segs.Get(id)
		return s.segmentEditor(w, r, http.StatusBadRequest, id, old.Name, rule, err)
	}
	http.Redirect(w, r, "/segments/"+v.ID, http.StatusSeeOther)
	return nil
}

// deleteSegmentForm is POST /segments/{id}/delete.
func (s *Server) deleteSegmentForm(w http.ResponseWriter, r *http.Request) error {
	if err := s.segs.Delete(r.PathValue("id")); err != nil {
		return segmentError(err)
	}
	http.Redirect(w, r, "/segments?deleted", http.StatusSeeOther)
	return nil
}

// exportSegment is GET /segments/{id}/export: the members as CSV.
func (s *Server) exportSegment(w http.ResponseWriter, r *http.Request) error {
	return s.segmentCSV(w, r.PathValue("id"), false)
}
