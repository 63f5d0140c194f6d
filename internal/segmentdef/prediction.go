package segmentdef

import (
	"fmt"
	"strings"
)

// Defaults and bounds of the predictive kinds.
const (
	DefaultHorizonDays     = 30
	MinHorizonDays         = 7
	MaxHorizonDays         = 365
	DefaultReturnEvent     = "Order Refunded"
	DefaultViewEvent       = "Product Viewed"
	DefaultProductProperty = "product_id"
	DefaultK               = 5
	MaxK                   = 20
)

// validatePrediction applies the defaults of a predictive kind (its goal event, Prediction)
// and refuses what such a trait does not take (property, window, thresholds).
func (c *ComputedTrait) validatePrediction() error {
	switch {
	case c.Property != "":
		return fieldErr("property", c.Kind+" takes no property (see prediction.revenueProperty and prediction.productProperty)")
	case c.Window.Duration() != 0 || c.Window.Days < 0 || c.Window.Hours < 0:
		return fieldErr("window", c.Kind+" takes no window (see prediction.horizonDays)")
	case c.Thresholds != nil:
		return fieldErr("thresholds", "only RFM traits take thresholds")
	}
	if c.Event.Name == "" && len(c.Event.Where) == 0 && c.Event.Type == "" {
		c.Event.Name = DefaultPurchaseEvent
		if c.Kind == KindChurnLikelihood {
			c.Event.Name = "*"
		}
	}
	if err := c.Event.compile("event"); err != nil {
		return err
	}
	if c.Prediction == nil {
		c.Prediction = &Prediction{}
	}
	return c.Prediction.validate(c.Kind)
}

func (p *Prediction) validate(kind string) error {
	if p.HorizonDays == 0 {
		p.HorizonDays = DefaultHorizonDays
	}
	if p.HorizonDays < MinHorizonDays || p.HorizonDays > MaxHorizonDays {
		return fieldErr("prediction.horizonDays", fmt.Sprintf("must be between %d and %d days", MinHorizonDays, MaxHorizonDays))
	}
	if strings.TrimSpace(p.RevenueProperty) == "" {
		p.RevenueProperty = DefaultRevenueProperty
	}
	if strings.TrimSpace(p.ProductProperty) == "" {
		p.ProductProperty = DefaultProductProperty
	}
	if p.ReturnEvent == nil {
		p.ReturnEvent = &EventFilter{Name: DefaultReturnEvent}
	}
	if err := p.ReturnEvent.compile("prediction.returnEvent"); err != nil {
		return err
	}
	if p.ViewEvent == nil {
		p.ViewEvent = &EventFilter{Name: DefaultViewEvent}
	}
	if err := p.ViewEvent.compile("prediction.viewEvent"); err != nil {
		return err
	}
	if p.K == 0 {
		p.K = DefaultK
	}
	if p.K < 1 || p.K > MaxK {
		return fieldErr("prediction.k", fmt.Sprintf("must be between 1 and %d", MaxK))
	}
	return nil
}
