package user

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Person is whom an export is about.
type Person struct {
	Email     string
	ProfileID string // model.UserProfileID(Email)
}

// ExportPart contributes one section of a person's data export (GDPR
// articles 15 and 20): a JSON array under Name, whose items Each emits in
// order. The composition root adds one part per package that stores
// something about people (events, sessions and touchpoints, attribution
// records; segment memberships and email activity when those packages
// exist), so a new package adds its section without this one changing.
type ExportPart struct {
	Name string
	// Each calls emit for each item (any JSON-encodable value). It should
	// read in pages or from a snapshot rather than hold everything.
	Each func(ctx context.Context, p Person, emit func(v any) error) error
}

// AddExportPart adds a section to every export, after those added before.
// Call it while wiring, before serving.
func (s *Service) AddExportPart(p ExportPart) { s.parts = append(s.parts, p) }

// ExportParts returns the names of the sections an export has, besides
// "user".
func (s *Service) ExportParts() []string {
	names := make([]string, len(s.parts))
	for i, p := range s.parts {
		names[i] = p.Name
	}
	return names
}

// Export writes everything stored about the user with email as one JSON
// document: {"email", "exportedAt", "user": attributes and tracked
// totals, then one array per ExportPart}. It returns ErrNotFound, before
// writing anything, when there is no such user. userJSON gives the "user"
// object (the API's own view of a user). An error after writing began
// leaves the document cut short: the caller can only log it.
func (s *Service) Export(ctx context.Context, w io.Writer, email string, userJSON func(model.User, model.Profile) (any, error)) error {
	a, p, err := s.Get(email)
	if err != nil {
		return err
	}
	head, err := userJSON(a, p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	fmt.Fprintf(bw, "{\"email\":%q,\"exportedAt\":%q,\"user\":", email, s.now().UTC().Format(time.RFC3339))
	if err := enc.Encode(head); err != nil {
		return err
	}
	person := Person{Email: email, ProfileID: model.UserProfileID(email)}
	for _, part := range s.parts {
		fmt.Fprintf(bw, ",%q:[", part.Name)
		first := true
		err := part.Each(ctx, person, func(v any) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !first {
				bw.WriteByte(',')
			}
			first = false
			return enc.Encode(v)
		})
		if err != nil {
			return fmt.Errorf("user: export %s: %w", part.Name, err)
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	return bw.Flush()
}
