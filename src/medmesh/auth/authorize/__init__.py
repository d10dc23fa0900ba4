"""Sign-in for apps: the authorization endpoint, its pages, codes, browser sessions, consent."""
