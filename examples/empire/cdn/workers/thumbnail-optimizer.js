// Edge worker "thumbnail-optimizer" (seed trigger "*.thumbnail.jpg"), from the seed's
// cdn_configuration.edge_workers. Resizes and re-encodes thumbnails on the fly:
// ?w=<width> (default 1280), ?q=<quality> (default 85), WebP when the client accepts it.
// Changes from the seed: a request without an Accept header no longer throws, and since
// Cloudflare cannot route "*.thumbnail.jpg" (its route is "*ytempire.com/*"), every other
// request goes to the origin untouched.
addEventListener('fetch', event => {
  event.respondWith(handleThumbnail(event.request))
})

async function handleThumbnail(request) {
  const url = new URL(request.url)
  if (!url.pathname.endsWith('.thumbnail.jpg')) return fetch(request)
  const format = (request.headers.get('Accept') || '').includes('webp') ? 'webp' : 'jpeg'
  const width = url.searchParams.get('w') || '1280'
  const quality = url.searchParams.get('q') || '85'

  const resizeOptions = {
    cf: {
      image: {
        format: format,
        width: parseInt(width),
        quality: parseInt(quality),
        'sharpen': 1.0
      }
    }
  }

  return fetch(request, resizeOptions)
}
