# An inosync 0.2.3 config, as in its README: inosyncd reads it unchanged
# (inosyncd -c /etc/inosync.py). Only literal assignments are accepted.

# array of directories that should be watched for changes
wpaths = ["/var/www/"]

# exclude list for rsync
rexcludes = [
	"/localhost",
]

# rpaths has one-to-one correspondence with wpaths for syncing multiple directories
rpaths = ["/var/www/"]

# remote locations in rsync syntax
rnodes = [
	"user1@a.mirror.com:",
	"user2@b.mirror.com:",
	"user3@c.mirror.com:",
]

# extra, raw parameters to rsync
#extra = "--rsh=ssh -a"

# limit remote sync speed (in KB/s, 0 = no limit)
#rspeed = 0

# event delay in seconds
#edelay = 10

# rsync binary path
#rsync = "/usr/bin/rsync"
