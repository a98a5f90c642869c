// demo SPA: see README
