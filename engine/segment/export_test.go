package segment

import (
	"context"

	"github.com/shoptrail/shoptrail/engine/store"
)

// PreviewFromLog is Preview without the preview index: what the index
// must agree with.
func (s *Service) PreviewFromLog(ctx context.Context, raw []byte) (PreviewResult, error) {
	r, err := Parse(raw)
	if err != nil {
		return PreviewResult{}, err
	}
	return s.previewLog(ctx, r, s.defs.Load(), s.now().UnixMilli())
}

// Indexed reports whether Preview would read the preview index for a rule.
func (s *Service) Indexed(raw []byte) bool {
	r, err := Parse(raw)
	if err != nil {
		return false
	}
	_, ok := s.idx.Load().snapshot(r)
	return ok
}

// HasRecord reports whether the projection keeps a record of a profile.
func (s *Service) HasRecord(profile string) bool {
	var rec record
	return s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, "p/"+profile, &rec) }) == nil
}
