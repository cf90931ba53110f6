// Edge worker "geo-router" (route "/video/*"), from the seed's
// cdn_configuration.edge_workers. Sends video requests to the origin of the client's
// continent, or to the global origin.
addEventListener("fetch", event => {
  event.respondWith(routeByGeo(event.request))
})

async function routeByGeo(request) {
  const country = request.cf.country
  const continent = request.cf.continent

  const origins = {
    'NA': 'https://na-origin.ytempire.com',
    'EU': 'https://eu-origin.ytempire.com',
    'AS': 'https://as-origin.ytempire.com',
    'default': 'https://global-origin.ytempire.com'
  }

  const origin = origins[continent] || origins.default
  const url = new URL(request.url)
  url.hostname = new URL(origin).hostname

  return fetch(url, request)
}
