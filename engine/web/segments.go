package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// The segments API: define segments, list their members, preview a rule.
// The work is engine/segment's.

const maxSegmentBody = 64 << 10

// previewTimeout bounds a preview: it reads every profile. It is shorter
// than the server's write timeout (30 s), so the answer still gets out.
const previewTimeout = 20 * time.Second

// segmentError maps the segment service's errors to answers.
func segmentError(err error) error {
	var fe *model.FieldError
	switch {
	case errors.Is(err, segment.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such segment")
	case errors.Is(err, segment.ErrTooMany):
		return errorf(http.StatusConflict, "too_many", "", err.Error())
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Message)
	case errors.Is(err, context.DeadlineExceeded):
		w := errorf(http.StatusServiceUnavailable, "timeout", "", "the preview took longer than "+previewTimeout.String()+"; save the segment and watch it build")
		return w
	}
	return err
}

func readRuleBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSegmentBody))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// listSegments is GET /api/v1/segments.
func (s *Server) listSegments(w http.ResponseWriter, r *http.Request) error {
	list, err := s.segs.List()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"segments": list})
	return nil
}

// createSegment is POST /api/v1/segments.
func (s *Server) createSegment(w http.ResponseWriter, r *http.Request) error {
	b, err := readRuleBody(w, r)
	if err != nil {
		return err
	}
	v, err := s.segs.Create(b)
	if err != nil {
		return segmentError(err)
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// getSegment is GET /api/v1/segments/{id}.
func (s *Server) getSegment(w http.ResponseWriter, r *http.Request) error {
	v, err := s.segs.Get(r.PathValue("id"))
	if err != nil {
		return segmentError(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// updateSegment is PUT /api/v1/segments/{id}.
func (s *Server) updateSegment(w http.ResponseWriter, r *http.Request) error {
	b, err := readRuleBody(w, r)
	if err != nil {
		return err
	}
	v, err := s.segs.Update(r.PathValue("id"), b)
	if err != nil {
		return segmentError(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// deleteSegment is DELETE /api/v1/segments/{id}.
func (s *Server) deleteSegment(w http.ResponseWriter, r *http.Request) error {
	if err := s.segs.Delete(r.PathValue("id")); err != nil {
		return segmentError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true})
	return nil
}

// previewSegment is POST /api/v1/segments/preview (and the admin editor's
// live count, POST /segments/preview): the count and a sample of what a
// rule selects now, without saving it.
func (s *Server) previewSegment(w http.ResponseWriter, r *http.Request) error {
	b, err := readRuleBody(w, r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), previewTimeout)
	defer cancel()
	res, err := s.segs.Preview(ctx, b)
	if err != nil {
		return segmentError(err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// segmentMembers is GET /api/v1/segments/{id}/members: a page of members
// (limit, after, emailable_only), or all of them as CSV (format=csv).
func (s *Server) segmentMembers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 100, 1000)
	if err != nil {
		return err
	}
	emailable := false
	if v := q.Get("emailable_only"); v != "" {
		if emailable, err = strconv.ParseBool(v); err != nil {
			return invalid("emailable_only", "emailable_only must be true or false")
		}
	}
	after := q.Get("after")
	if len(after) > 300 {
		return invalid("after", "after must be the next value of the previous page")
	}
	id := r.PathValue("id")
	switch q.Get("format") {
	case "", "json":
	case "csv":
		return s.segmentCSV(w, id, emailable)
	default:
		return invalid("format", "format must be json or csv")
	}
	ms, next, err := s.segs.Members(id, after, limit, emailable)
	if err != nil {
		return segmentError(err)
	}
	if ms == nil {
		ms = []segment.Member{}
	}
	out := map[string]any{"members": ms}
	if next != "" {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// segmentCSV writes every member of a segment as CSV.
func (s *Server) segmentCSV(w http.ResponseWriter, id string, emailable bool) error {
	if _, err := s.segs.Get(id); err != nil {
		return segmentError(err)
	}
	rows := [][]string{{"email", "anonymous_id", "since"}}
	after := ""
	for {
		ms, next, err := s.segs.Members(id, after, 1000, emailable)
		if err != nil {
			return segmentError(err)
		}
		for _, m := range ms {
			rows = append(rows, []string{m.Email, m.AnonymousID, m.Since.Format(time.RFC3339)})
		}
		if next == "" {
			break
		}
		after = next
	}
	return writeCSV(w, "segment-"+id+".csv", rows)
}
