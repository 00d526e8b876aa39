package store

// Internal parsers for the differential tests of package store_test.
var (
	ParseFast    = parseFast
	ParseStrict  = parseStrict
	DecodeObject = decodeObject
)
