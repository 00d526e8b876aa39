// Where the mini program's own backend listens (examples/backend). In a real
// mini program this is an https domain listed in the console's request
// domains; tests set it before the first call.
module.exports = {
  baseUrl: 'https://api.example.com',
}
