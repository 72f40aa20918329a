package awsclient

import "github.com/aws/aws-sdk-go-v2/service/s3"

// RegionalS3 returns the S3 clients of b, one a Region. On an endpoint of
// b's (an emulator), which serves every bucket on one host, they address
// buckets by path: virtual-hosted names (bucket.127.0.0.1) would not
// resolve.
func (b *Base) RegionalS3() *Regional[s3.Client] {
	return NewRegional(func(region string) *s3.Client {
		return s3.NewFromConfig(b.AWS, func(o *s3.Options) {
			o.Region = region
			o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		})
	})
}
