-- KYC profiles: postcode and city join the personal data stored encrypted (AES-256-GCM under
-- BARONG_ENCRYPTION_KEY, like first_name/last_name/dob/address); the clear columns go. The KYC
-- callback finds profiles by the provider's applicant id.
ALTER TABLE profiles ADD COLUMN postcode_encrypted TEXT;
ALTER TABLE profiles ADD COLUMN city_encrypted TEXT;
ALTER TABLE profiles DROP COLUMN postcode;
ALTER TABLE profiles DROP COLUMN city;
CREATE INDEX index_profiles_on_applicant_id ON profiles (applicant_id);
