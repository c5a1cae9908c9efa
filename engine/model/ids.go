package model

import "strings"

// Profile ids. A profile is a user ("u:<email>") once the shop told us the
// email, and anonymous ("a:<anonymous id>") until then. Only these functions
// make or read them.

// UserProfileID is the profile id of the user with email.
func UserProfileID(email string) string { return "u:" + email }

// AnonymousProfileID is the profile id of an anonymous browser.
func AnonymousProfileID(anonymousID string) string { return "a:" + anonymousID }

// ProfileEmail returns the email of a user's profile id, "" for an
// anonymous one.
func ProfileEmail(profileID string) string {
	email, _ := strings.CutPrefix(profileID, "u:")
	if email == profileID {
		return ""
	}
	return email
}

// ProfileAnonymousID returns the anonymous id of an anonymous profile's id,
// "" for a user's.
func ProfileAnonymousID(profileID string) string {
	anon, ok := strings.CutPrefix(profileID, "a:")
	if !ok {
		return ""
	}
	return anon
}
