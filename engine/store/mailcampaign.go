package store

// SpaceMailCampaigns is engine/mailcampaign's space: campaigns, their
// recipient lists and the daily caps (layout in keys.go). It belongs to no
// projection: a rebuild leaves it alone.
var SpaceMailCampaigns = Space{"mcamp/"}

// SpaceAutomations is engine/automation's space: the automations, their
// durable timers and who got what when (layout in keys.go). Not a
// projection's: the automation projection keeps its own space.
var SpaceAutomations = Space{"autom/"}
