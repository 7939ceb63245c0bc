package upstream

import "maps"

// Plain-language descriptions of each provider's scopes, shown on the
// confirmation screen instead of raw identifiers ("See the track playing
// right now" rather than user-read-currently-playing). Each list follows
// the provider's own scope documentation, cited above it, reworded from
// the person's side: what the device may see or do. A scope missing here
// is shown by its identifier; a client entry's scope_descriptions can add
// or replace descriptions (docs/FORKING.md).

// spotifyScopes: https://developer.spotify.com/documentation/web-api/concepts/scopes
var spotifyScopes = map[string]string{
	"ugc-image-upload":            "Upload images as your playlists' covers",
	"user-read-playback-state":    "See what you are playing and on which device",
	"user-modify-playback-state":  "Control playback on your devices",
	"user-read-currently-playing": "See the track playing right now",
	"app-remote-control":          "Control playback in the Spotify app",
	"streaming":                   "Play music on this device",
	"playlist-read-private":       "See your private playlists",
	"playlist-read-collaborative": "See the collaborative playlists you are in",
	"playlist-modify-private":     "Create and change your private playlists",
	"playlist-modify-public":      "Create and change your public playlists",
	"user-follow-modify":          "Follow and unfollow artists and people for you",
	"user-follow-read":            "See the artists and people you follow",
	"user-read-playback-position": "See where you stopped in episodes and audiobooks",
	"user-top-read":               "See your top artists and tracks",
	"user-read-recently-played":   "See what you played recently",
	"user-library-modify":         "Save and remove items in Your Library",
	"user-library-read":           "See what you saved in Your Library",
	"user-read-email":             "See your email address",
	"user-read-private":           "See your country and subscription type",
}

// stravaScopes: https://developers.strava.com/docs/authentication/#details-about-requesting-access
var stravaScopes = map[string]string{
	"read":              "See your public profile, segments, routes and club feeds",
	"read_all":          "See your private routes, segments and events",
	"profile:read_all":  "See your whole profile, even parts only followers or you can see",
	"profile:write":     "Change your weight and FTP, and star segments for you",
	"activity:read":     "See your activities shown to everyone and to followers",
	"activity:read_all": "See all your activities, including private ones and privacy zones",
	"activity:write":    "Upload and edit your activities",
}

// discordScopes: https://discord.com/developers/docs/topics/oauth2#shared-resources-oauth2-scopes
var discordScopes = map[string]string{
	"identify":               "See your username and avatar",
	"email":                  "See your email address",
	"guilds":                 "See which servers you are in",
	"guilds.join":            "Add you to servers",
	"guilds.members.read":    "See your nickname and roles in your servers",
	"connections":            "See the accounts you linked to Discord",
	"gdm.join":               "Add you to group messages",
	"messages.read":          "Read your messages in the Discord app running on this device",
	"role_connections.write": "Update your linked-role details",
	"activities.read":        "See your activity status",
	"activities.write":       "Update your activity status",
	"openid":                 "Confirm who you are",
}

// dropboxScopes: https://developers.dropbox.com/oauth-guide (Scopes)
var dropboxScopes = map[string]string{
	"account_info.read":    "See your name, email address and country",
	"account_info.write":   "Change your account's basic settings",
	"files.metadata.read":  "See the names and details of your files and folders",
	"files.metadata.write": "Rename, move and delete your files and folders",
	"files.content.read":   "Read the content of your files",
	"files.content.write":  "Create and change the content of your files",
	"sharing.read":         "See what you share and with whom",
	"sharing.write":        "Share your files and folders and change sharing",
	"file_requests.read":   "See your file requests",
	"file_requests.write":  "Create and change your file requests",
	"contacts.read":        "See your manually added contacts",
	"contacts.write":       "Change your manually added contacts",
}

// twitchScopes: https://dev.twitch.tv/docs/authentication/scopes/
var twitchScopes = map[string]string{
	"user:read:email":            "See your email address",
	"user:read:follows":          "See the channels you follow",
	"user:read:subscriptions":    "See which channels you subscribe to",
	"user:read:chat":             "Read chat in the channels you join",
	"user:write:chat":            "Send chat messages as you",
	"chat:read":                  "Read live chat",
	"chat:edit":                  "Send live chat messages as you",
	"channel:read:subscriptions": "See your channel's subscribers",
	"channel:manage:broadcast":   "Change your stream's title, category and markers",
	"channel:read:redemptions":   "See your channel points rewards and redemptions",
	"moderator:read:followers":   "See who follows the channels you moderate",
	"bits:read":                  "See Bits cheered on your channel",
	"clips:edit":                 "Create clips of streams",
}

// OpenIDScopes returns descriptions of the scopes OpenID Connect defines
// (OpenID Connect Core 1.0 §5.4 and §11), which every oidc provider and
// many generic ones understand the same way.
func OpenIDScopes() map[string]string { return maps.Clone(openIDScopes) }

var openIDScopes = map[string]string{
	"openid":         "Confirm who you are",
	"profile":        "See your name, picture and other basic profile details",
	"email":          "See your email address",
	"address":        "See your postal address",
	"phone":          "See your phone number",
	"offline_access": "Stay connected while you are away, until you disconnect it",
}
