// Package campaign holds the onsite content campaigns: the model and its
// validation, sanitising of the content HTML, storage through engine/store,
// the per-shopper state folded from the event log (caps, chaining goals,
// carts, reports), the server-side decision for a page view, product blocks
// rendered from the catalogue, and the reports per variation.
//
// A campaign is a workflow of groups (steps). Each group has display
// conditions, a placement, optional limits and a trigger, a goal, and at
// least one content variation. Group N+1 becomes eligible for a shopper
// once group N reached its goal for that shopper. The variation a shopper
// sees is a stable hash of (shopper, campaign, group), where the shopper is
// the profile after identity merges: the same on every device after login.
package campaign

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Statuses. A new campaign is a draft unless it says otherwise; only
// active campaigns are shown to shoppers.
const (
	StatusDraft    = "draft"
	StatusActive   = "active"
	StatusPaused   = "paused"
	StatusArchived = "archived"
)

// Placement modes: a CSS selector with one of the first five, or an
// overlay (no selector) with a close button.
const (
	ModeReplace   = "replace"
	ModeBefore    = "before"
	ModeAfter     = "after"
	ModePrepend   = "prepend"
	ModeAppend    = "append"
	ModePopup     = "popup"
	ModeBarTop    = "bar_top"
	ModeBarBottom = "bar_bottom"
)

// Goals: what a shopper does with a group for the next one to apply.
const (
	GoalShown = "shown"
	GoalClick = "click"
	GoalClose = "close"
	GoalOrder = "order"
)

// Triggers: when the content appears on the page.
const (
	TriggerImmediately = "immediately"
	TriggerDelay       = "delay"  // after Value seconds
	TriggerScroll      = "scroll" // after scrolling Value percent of the page
	TriggerExitIntent  = "exit_intent"
)

// Event types of campaigns, sent by the renderer to /t like every event.
const (
	EventImpression = "campaign_impression"
	EventClick      = "campaign_click"
	EventClose      = "campaign_close"
)

// Campaign is one onsite content campaign. The JSON names are the API's.
type Campaign struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Groups    []Group   `json:"groups"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Group is one step of the workflow.
type Group struct {
	Name       string      `json:"name"`
	Conditions []Condition `json:"conditions,omitempty"`
	Placement  Placement   `json:"placement"`
	Trigger    *Trigger    `json:"trigger,omitempty"`
	Limits     Limits      `json:"limits,omitzero"`
	// Goal is what makes the next group eligible: shown (the default),
	// click, close or order (within 7 days of an impression).
	Goal       string      `json:"goal,omitempty"`
	Variations []Variation `json:"variations"`
}

// Placement is where the content goes.
type Placement struct {
	Selector string `json:"selector,omitempty"`
	Mode     string `json:"mode"`
}

// Overlay reports whether the placement is an overlay (popup or bar).
func (p Placement) Overlay() bool {
	return p.Mode == ModePopup || p.Mode == ModeBarTop || p.Mode == ModeBarBottom
}

// Trigger is when the content appears; nil means immediately.
type Trigger struct {
	Kind  string  `json:"kind"`
	Value float64 `json:"value,omitempty"` // seconds (delay) or percent (scroll)
}

// Limits cap impressions of a group; 0 is no cap. per_session counts in
// the browser's session (12 h after its last event) and on the server;
// per_user on the server, so clearing storage does not reset it.
type Limits struct {
	PerSession int `json:"per_session,omitempty"`
	PerUser    int `json:"per_user,omitempty"`
}

// Variation is one version of a group's content.
type Variation struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	// Control shows nothing: shoppers assigned to it are counted (an
	// impression is recorded) so that the others' uplift can be measured.
	Control bool   `json:"control,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// Condition is one display condition; a group shows when all hold.
type Condition struct {
	Kind  string `json:"kind"`
	Op    string `json:"op"`
	Value Value  `json:"value"`
}

// Value is a condition's operand: scripts may send a string or a number;
// it is kept as the string.
type Value string

// UnmarshalJSON accepts a string, a number or a boolean.
func (v *Value) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = Value(s)
		return nil
	}
	var f json.Number
	if err := json.Unmarshal(b, &f); err == nil {
		*v = Value(f.String())
		return nil
	}
	var t bool
	if err := json.Unmarshal(b, &t); err == nil {
		*v = Value(strconv.FormatBool(t))
		return nil
	}
	return errors.New("a condition's value must be a string or a number")
}

// ErrNotFound means there is no campaign with that id.
var ErrNotFound = errors.New("campaign: not found")

// FieldError names the JSON path of a bad field, e.g.
// groups[1].placement.selector.
type FieldError struct {
	Path, Message string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Message }
