package mailcampaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Saved templates: named emails (HTML, optional text, default subject and
// preheader) that campaigns use by id. A campaign copies its template's
// HTML and text when sending starts, so editing the template later does
// not change a campaign already sent; a template that a draft or
// scheduled campaign names cannot be deleted.

// MaxTemplates bounds the saved templates.
const MaxTemplates = 1000

// Errors of saved templates.
var (
	ErrTemplateNotFound = errors.New("mailcampaign: no such template")
)

// InUseError says which campaigns keep a template from being deleted.
type InUseError struct {
	Template  string
	Campaigns []string // "name (status)"
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("the template is used by %d campaign(s) not sent yet: %s; choose another template for them, or delete them, first",
		len(e.Campaigns), strings.Join(e.Campaigns, ", "))
}

// SavedTemplate is a named email template.
type SavedTemplate struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Subject   string    `json:"subject,omitempty"`   // the default subject of campaigns using it
	Preheader string    `json:"preheader,omitempty"` // the default preheader
	HTML      string    `json:"html"`
	Text      string    `json:"text,omitempty"` // "": made from the HTML
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TemplateInput is what the API and the admin UI send to save a template.
type TemplateInput struct {
	Name      string `json:"name"`
	Subject   string `json:"subject"`
	Preheader string `json:"preheader"`
	HTML      string `json:"html"`
	Text      string `json:"text"`
}

// TemplateFields lists TemplateInput's JSON fields (for error messages).
const TemplateFields = "name, subject, preheader, html, text"

func templateKey(id string) string { return "t/" + id }

// validateTemplate checks a template's input: every field, then the HTML
// and text as templates (errors name the line).
func validateTemplate(in *TemplateInput) error {
	in.Name = strings.TrimSpace(in.Name)
	in.Subject = strings.TrimSpace(in.Subject)
	in.Preheader = strings.TrimSpace(in.Preheader)
	switch {
	case in.Name == "":
		return &FieldError{Field: "name", Message: "is required"}
	case len(in.Name) > MaxName || !oneLine(in.Name):
		return &FieldError{Field: "name", Message: fmt.Sprintf("must be one line of at most %d bytes", MaxName)}
	case len(in.Subject) > mail.MaxSubject || !oneLine(in.Subject):
		return &FieldError{Field: "subject", Message: fmt.Sprintf("must be one line of at most %d bytes", mail.MaxSubject)}
	case len(in.Preheader) > MaxPreheader || !oneLine(in.Preheader):
		return &FieldError{Field: "preheader", Message: fmt.Sprintf("must be one line of at most %d bytes", MaxPreheader)}
	case strings.TrimSpace(in.HTML) == "":
		return &FieldError{Field: "html", Message: "is required"}
	case len(in.HTML) > mail.MaxBody || !utf8.ValidString(in.HTML):
		return &FieldError{Field: "html", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	case len(in.Text) > mail.MaxBody || !utf8.ValidString(in.Text):
		return &FieldError{Field: "text", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	}
	_, err := CheckTemplate(in.HTML, in.Text)
	return err
}

// CreateTemplate saves a new template.
func (s *Service) CreateTemplate(in TemplateInput) (SavedTemplate, error) {
	if err := validateTemplate(&in); err != nil {
		return SavedTemplate{}, err
	}
	now := s.now().UTC()
	t := SavedTemplate{ID: newID(), Name: in.Name, Subject: in.Subject, Preheader: in.Preheader, HTML: in.HTML, Text: in.Text, CreatedAt: now, UpdatedAt: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.st.Write(func(tx *store.Tx) error {
		n := 0
		if err := tx.ScanFrom(Space, "t/", "", false, false, func(string, json.RawMessage) (bool, error) { n++; return n < MaxTemplates, nil }); err != nil {
			return err
		}
		if n >= MaxTemplates {
			return &FieldError{Field: "name", Message: fmt.Sprintf("at most %d templates; delete unused ones", MaxTemplates)}
		}
		return tx.Set(Space, templateKey(t.ID), t)
	})
	return t, err
}

// UpdateTemplate changes a template. Campaigns already sending or sent
// keep the copy they took.
func (s *Service) UpdateTemplate(id string, in TemplateInput) (SavedTemplate, error) {
	if err := validateTemplate(&in); err != nil {
		return SavedTemplate{}, err
	}
	if !validID(id) {
		return SavedTemplate{}, ErrTemplateNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var t SavedTemplate
	err := s.st.Write(func(tx *store.Tx) error {
		if err := tx.Get(Space, templateKey(id), &t); errors.Is(err, store.ErrNotFound) {
			return ErrTemplateNotFound
		} else if err != nil {
			return err
		}
		t.Name, t.Subject, t.Preheader, t.HTML, t.Text = in.Name, in.Subject, in.Preheader, in.HTML, in.Text
		t.UpdatedAt = s.now().UTC()
		return tx.Set(Space, templateKey(id), t)
	})
	return t, err
}

// DeleteTemplate deletes a template that no draft or scheduled campaign
// uses (*InUseError otherwise).
func (s *Service) DeleteTemplate(id string) error {
	if !validID(id) {
		return ErrTemplateNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Write(func(tx *store.Tx) error {
		if ok, err := tx.Has(Space, templateKey(id)); err != nil {
			return err
		} else if !ok {
			return ErrTemplateNotFound
		}
		var users []string
		if err := tx.Scan(Space, "c/", func(_ string, v json.RawMessage) (bool, error) {
			var c Campaign
			if err := json.Unmarshal(v, &c); err != nil {
				return false, err
			}
			if c.Template == id && c.HTML == "" && (c.Status == Draft || c.Status == Scheduled || c.Status == Sending) {
				users = append(users, fmt.Sprintf("%q (%s)", c.Name, c.Status))
			}
			return true, nil
		}); err != nil {
			return err
		}
		if len(users) > 0 {
			slices.Sort(users)
			return &InUseError{Template: id, Campaigns: users}
		}
		return tx.Delete(Space, templateKey(id))
	})
}

// GetTemplate returns a template.
func (s *Service) GetTemplate(id string) (SavedTemplate, error) {
	if !validID(id) {
		return SavedTemplate{}, ErrTemplateNotFound
	}
	var t SavedTemplate
	err := s.st.Read(func(tx *store.Tx) error { return getTemplate(tx, id, &t) })
	return t, err
}

func getTemplate(tx *store.Tx, id string, t *SavedTemplate) error {
	if !validID(id) {
		return ErrTemplateNotFound
	}
	err := tx.Get(Space, templateKey(id), t)
	if errors.Is(err, store.ErrNotFound) {
		return ErrTemplateNotFound
	}
	return err
}

// ListTemplates returns every template by name (without HTML and text).
func (s *Service) ListTemplates() ([]SavedTemplate, error) {
	out := []SavedTemplate{}
	err := s.st.Read(func(tx *store.Tx) error {
		return tx.Scan(Space, "t/", func(_ string, v json.RawMessage) (bool, error) {
			var t SavedTemplate
			if err := json.Unmarshal(v, &t); err != nil {
				return false, err
			}
			t.HTML, t.Text = "", ""
			out = append(out, t)
			return true, nil
		})
	})
	slices.SortFunc(out, func(a, b SavedTemplate) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// PreviewTemplate renders a template (saved, or being edited) for the
// profile of email ("": an empty profile).
func (s *Service) PreviewTemplate(in TemplateInput, email string) (htmlOut, textOut string, err error) {
	return s.Preview(Input{HTML: in.HTML, Text: in.Text, Preheader: in.Preheader}, email)
}

// TestSendTemplate sends a template's message, rendered for the profile of
// as (or to's own), to any address, like TestSend.
func (s *Service) TestSendTemplate(ctx context.Context, t SavedTemplate, to, as string) (mail.Record, error) {
	subject := t.Subject
	if subject == "" {
		subject = t.Name
	}
	return s.TestSend(ctx, Campaign{ID: "template-" + t.ID, Subject: subject, Preheader: t.Preheader, HTML: t.HTML, Text: t.Text}, to, as)
}
