package mail

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/user"
)

// Users is the Subscriptions of the Users API: isSubscribed of the user's
// attributes. Unsubscribing sets it to false through user.Service, which
// records user_update and unsubscribe events.
type Users struct {
	Store *store.Store
	Users *user.Service
}

// Subscribed reports whether the user has isSubscribed true.
func (u Users) Subscribed(email string) (bool, error) {
	a, err := u.Store.User(email)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.IsSubscribed != nil && *a.IsSubscribed, nil
}

// Unsubscribe sets isSubscribed to false (nothing happens when it is).
func (u Users) Unsubscribe(ctx context.Context, email, _ string) error {
	_, _, _, err := u.Users.Save(ctx, email, model.UserPatch{"isSubscribed": json.RawMessage("false")}, user.Upsert)
	return err
}
