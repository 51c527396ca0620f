//! `UserAgent`: a person at a browser, scripted over plain HTTP. It walks the test OAuth
//! server's real (development) login, consent and device pages with a cookie jar, and stops
//! at the redirect back to the client, the way a browser would hand it to sessctl's
//! loopback listener. No page of the server is mocked: these are node-oidc-provider's own.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// At most this many pages per walk: a real login is about six.
const MAX_STEPS: usize = 16;

/// One HTTP reply as the walk sees it.
#[derive(Debug)]
pub struct Page {
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A scripted browser for one OAuth server (`issuer`).
pub struct UserAgent {
    issuer: String,
    http: reqwest::blocking::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl UserAgent {
    pub fn new(issuer: &str) -> Self {
        let http = crate::support::http_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build the user agent's HTTP client");
        Self {
            issuer: issuer.to_owned(),
            http,
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens `authorize_url`, logs in as `account`, consents, and returns the URL the
    /// provider finally redirects to (the client's redirect URI with `code` and `state`),
    /// without visiting it: a loopback URI or the server's own pasted-code page.
    pub fn authorize(&self, authorize_url: &str, account: &str) -> String {
        let mut page = self.get(authorize_url);
        for _ in 0..MAX_STEPS {
            if let Some(location) = &page.location {
                if !self.is_login_page(location) {
                    return location.clone();
                }
                page = self.get(&location.clone());
            } else {
                page = self.submit_interaction(&page, account);
            }
        }
        panic!("the login did not redirect back within {MAX_STEPS} pages; last: {page:?}");
    }

    /// Opens a device login's `verification_uri_complete`, and approves it as `account`
    /// (`approve`) or presses "abort" on the confirmation page.
    pub fn device(&self, verification_uri_complete: &str, account: &str, approve: bool) {
        // The complete URI answers with an auto-submitting form (user code + xsrf).
        let start = self.get(verification_uri_complete);
        let form = hidden_inputs(&start.body);
        let confirm = self.post(&start.url, &form);
        let mut fields = hidden_inputs(&confirm.body);
        assert!(fields.contains_key("xsrf"), "no confirm form: {confirm:?}");
        if !approve {
            fields.remove("confirm");
            fields.insert("abort".into(), "yes".into());
            let aborted = self.post(&confirm.url, &fields);
            assert!(
                aborted.body.contains("request was interrupted"),
                "the abort was not acknowledged: {aborted:?}"
            );
            return;
        }
        let mut page = self.post(&confirm.url, &fields);
        for _ in 0..MAX_STEPS {
            match &page.location {
                Some(location) => page = self.get(&location.clone()),
                None if page.url.contains("/interaction/") => {
                    page = self.submit_interaction(&page, account);
                }
                None => {
                    assert_eq!(page.status, 200, "device approval ended badly: {page:?}");
                    return;
                }
            }
        }
        panic!("the device approval did not finish within {MAX_STEPS} pages: {page:?}");
    }

    /// Fetches a page (following nothing).
    pub fn get(&self, url: &str) -> Page {
        let url = self.absolute(url);
        let sent = self
            .http
            .get(&url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send();
        self.page(url, sent)
    }

    fn post(&self, url: &str, form: &BTreeMap<String, String>) -> Page {
        let url = self.absolute(url);
        let sent = self
            .http
            .post(&url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(form)
            .send();
        self.page(url, sent)
    }

    /// Submits the dev interaction page: the login form (any password) or the consent form.
    fn submit_interaction(&self, page: &Page, account: &str) -> Page {
        assert_eq!(page.status, 200, "expected an interaction page: {page:?}");
        let mut form = hidden_inputs(&page.body);
        match form.get("prompt").map(String::as_str) {
            Some("login") => {
                form.insert("login".into(), account.into());
                form.insert("password".into(), "any".into());
            }
            Some("consent") => {}
            _ => panic!("not a login or consent page: {page:?}"),
        }
        self.post(&page.url, &form)
    }

    fn page(&self, url: String, sent: reqwest::Result<reqwest::blocking::Response>) -> Page {
        let response = sent.unwrap_or_else(|e| panic!("GET/POST {url}: {e}"));
        let mut jar = self.cookies.lock().expect("cookie jar");
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            if let Some((name, rest)) = text.split(';').next().and_then(|c| c.split_once('=')) {
                jar.insert(name.trim().to_owned(), rest.trim().to_owned());
            }
        }
        drop(jar);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.absolute(l));
        let body = response.text().unwrap_or_default();
        Page {
            url,
            status,
            location,
            body,
        }
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().expect("cookie jar");
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// True for the server's authorization and interaction pages: the walk goes on there.
    fn is_login_page(&self, url: &str) -> bool {
        url.strip_prefix(&self.issuer)
            .is_some_and(|path| path.starts_with("/auth") || path.starts_with("/interaction/"))
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.issuer)
        } else {
            url.to_owned()
        }
    }
}

/// Every `<input type="hidden" name="N" value="V"/>` of a page.
pub fn hidden_inputs(html: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for piece in html.split("<input").skip(1) {
        let tag = piece.split('>').next().unwrap_or_default();
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            found.insert(name, value);
        }
    }
    found
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&#x2D;", "-").replace("&amp;", "&"))
}
