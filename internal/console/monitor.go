package console

// Monitor is what the Overview and Live events pages read that no API serves: per-minute
// counts and the latest events and rejections (not built yet).
type Monitor interface{}
