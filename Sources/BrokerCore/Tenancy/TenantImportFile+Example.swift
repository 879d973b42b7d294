extension TenantImportFile {
    /// `tenants.example.json`, built in so that `demo` and `simulate` work from any directory.
    /// `TenantImportTests` checks that it matches the file in the repository.
    public static let example = #"""
{
  "tenants": [
    {
      "id": "acme",
      "name": "Acme Travel",
      "credentials": [
        { "region": "sg", "appid": "1", "app_key": "2" },
        { "region": "us", "appid": "7", "app_key_env": "ACME_US_APP_KEY" }
      ]
    },
    {
      "id": "globex",
      "name": "Globex Retail {dc_brand}",
      "credentials": [
        { "region": "sg", "appid": "4021", "app_key": "demo-key-globex-sg-not-a-real-secret" }
      ]
    },
    {
      "id": "initech",
      "name": "Initech Support",
      "credentials": [
        { "region": "us", "appid": "8812", "app_key": "demo-key-initech-us-not-a-real-secret" }
      ]
    }
  ]
}
"""#

}
